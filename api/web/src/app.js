// The pages other than the modeler and the diagram view: one bundle, the page is chosen by <body data-page>.
import { initLayout } from './pages/common.js';
import { loginPage } from './pages/login.js';
import { inboxPage } from './pages/inbox.js';
import { taskPage } from './pages/task.js';
import { dossierPage, newDossierPage } from './pages/dossier.js';
import { receiptPage, controlSlipPage } from './pages/slips.js';
import { boardPage, reportPage } from './pages/supervisor.js';
import { lookupPage } from './pages/lookup.js';
import { proceduresPage } from './pages/procedures.js';
import { renderForm } from './lib/form.js';
import { dossiersPage } from './pages/dossiers.js';
import {
  citizenHomePage, citizenProcedurePage, citizenSigninPage, citizenDossiersPage, citizenDossierPage,
} from './pages/citizen.js';
import { deadLettersPage } from './pages/admin.js';

const PAGES = {
  login: loginPage,
  inbox: inboxPage,
  task: taskPage,
  dossier: dossierPage,
  'new-dossier': newDossierPage,
  receipt: receiptPage,
  'control-slip': controlSlipPage,
  board: boardPage,
  report: reportPage,
  lookup: lookupPage,
  procedures: proceduresPage,
  dossiers: dossiersPage,
  'citizen-home': citizenHomePage,
  'citizen-procedure': citizenProcedurePage,
  'citizen-signin': citizenSigninPage,
  'citizen-dossiers': citizenDossiersPage,
  'citizen-dossier': citizenDossierPage,
  'dead-letters': deadLettersPage,
};

// The form renderer, reachable from the console and the browser tests.
window.motcuaForms = { renderForm };

function start() {
  initLayout();
  const page = PAGES[document.body.dataset.page];
  if (page) page();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
