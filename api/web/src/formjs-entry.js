// The form-js viewer, a bundle of its own loaded by the task page only (it is large; other pages skip it).
import { renderFormJs } from './lib/formjs.js';

window.motcuaFormJs = { renderFormJs };
