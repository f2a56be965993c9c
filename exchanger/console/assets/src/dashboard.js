// The dashboard's live part: polls the figures as JSON, redraws the per-minute charts and refreshes
// the figures and tables the page rendered on the server (which read the same without this script).
import {
  Chart, LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip, Colors,
} from 'chart.js';

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip, Colors);

const POLL_MS = 5000;
const COLUMNS = {
  messages: ['type', 'outcome', 'count'],
  rejections: ['stage', 'reason', 'count'],
  agencies: ['destination', 'kind', 'count'],
  routes: ['type', 'route', 'count'],
  queues: ['queue', 'depth'],
  certificates: ['participant', 'serial', 'days'],
  readiness: ['check', 'detail'],
};

function lookup(figures, path) {
  return path.split('.').reduce((value, key) => (value == null ? value : value[key]), figures);
}

function lineChart(canvas) {
  return new Chart(canvas, {
    type: 'line',
    data: { labels: [], datasets: [] },
    options: { animation: false, responsive: true, scales: { y: { beginAtZero: true, title: { display: true, text: 'per minute' } } } },
  });
}

function redraw(chart, rates) {
  chart.data.labels = rates.times;
  chart.data.datasets = Object.entries(rates.series).map(([label, data]) => ({ label, data, pointRadius: 0, borderWidth: 2 }));
  chart.update();
}

function refreshTable(table, rows, columns) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows.map((row) => {
    const tr = document.createElement('tr');
    if (row.ok === false) tr.className = 'bad';
    for (const column of columns) {
      const td = document.createElement('td');
      const value = row[column];
      td.textContent = value == null ? 'unknown' : String(value);
      tr.appendChild(td);
    }
    return tr;
  }));
}

function start() {
  const holder = document.querySelector('[data-source]');
  if (!holder) return;
  const messages = lineChart(document.getElementById('chart-messages'));
  const rejections = lineChart(document.getElementById('chart-rejections'));
  async function poll() {
    try {
      const response = await fetch(holder.dataset.source, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
      if (response.status === 401) {
        window.location.reload(); // the session expired: the server shows the sign-in page and says why
        return;
      }
      if (!response.ok) return;
      const figures = await response.json();
      redraw(messages, figures.rates);
      redraw(rejections, figures.rejection_rates);
      for (const element of document.querySelectorAll('[data-figure]')) {
        const value = lookup(figures, element.dataset.figure);
        element.textContent = value == null ? '–' : String(value);
      }
      for (const table of document.querySelectorAll('table[data-table]')) {
        const name = table.dataset.table;
        if (figures[name]) refreshTable(table, figures[name], COLUMNS[name]);
      }
      document.body.dataset.dashboardUpdated = String(Date.now());
    } catch (error) {
      // The daemon may be restarting: the next poll tries again.
    }
  }
  poll();
  setInterval(poll, POLL_MS);
}

document.addEventListener('DOMContentLoaded', start);
