import { get } from './api.js';
import { badge, button, code, details, h, replace, section, table, time } from './dom.js';
import { fill, pageTitle } from './page.js';
function statusBadge(s) {
  return badge(s, s === 'up' ? 'ok' : 'warn');
}
export function renderCluster(view) {
  const slot = h('div');
  const load = async () => {
    const c = await get('/admin/v1/cluster');
    return h('div', null, details([
      ['This node', code(c.node_id)],
      ['Ring epoch', String(c.epoch)],
      ['Members', String(c.members.length)],
    ], 'cluster-summary'), table(null, ['Node', 'Address', 'Status', 'Last heartbeat'], c.members.map((m) => [
      [code(m.node_id), m.node_id === c.node_id ? ' (this node)' : ''],
      m.advertise ? code(m.advertise) : '—',
      statusBadge(m.status),
      time(m.last_heartbeat),
    ]), { rowHeader: true, testid: 'cluster-members', empty: 'No members.' }));
  };
  replace(view, pageTitle('Cluster'), section('Members', 2, h('p', { class: 'hint' }, 'Heartbeat times are each member’s own clock.'), slot, h('div', { class: 'actions' }, button('Refresh', () => void fill(slot, load), { id: 'cluster-refresh' }))));
  void fill(slot, load);
}
