// Chart.js and the board's charts, a bundle of its own loaded by the supervisors' board only.
import { barChart, rateChart, charts } from './lib/charts.js';

window.motcuaChartsLib = { barChart, rateChart };
// The board's charts by figure id, for the console and the browser tests.
window.motcuaCharts = charts;
