import { ApiError, del, get, post, put, seg } from './api.js';
import { badge, button, checkboxField, code, h, inputField, list, replace, section, selectField, table, textareaField, time } from './dom.js';
import { confirmAction } from './dialog.js';
import { errorBox } from './errors.js';
import { form, run } from './forms.js';
import { fill } from './page.js';
function warningsBox(warnings, what) {
  if (!warnings.length)
    return null;
  return h('div', { class: 'warnings', role: 'alert', 'data-testid': 'sql-warnings' }, h('p', null, h('strong', null, `${what} has ${warnings.length === 1 ? 'a warning' : `${warnings.length} warnings`}:`)), h('ul', null, warnings.map((w) => h('li', null, w.message, ' ', h('span', { class: 'muted' }, '(', code(w.code), ')')))));
}
function cell(v) {
  if (v === null || v === undefined)
    return h('span', { class: 'muted' }, 'NULL');
  if (typeof v === 'string')
    return v;
  if (typeof v === 'number' || typeof v === 'boolean')
    return String(v);
  return code(JSON.stringify(v));
}
function rowsTable(rows) {
  const cols = [];
  for (const r of rows)
    for (const k of Object.keys(r))
      if (!cols.includes(k))
        cols.push(k);
  return table(null, cols, rows.map((r) => cols.map((c) => cell(r[c]))), { testid: 'sql-rows', empty: 'No rows.' });
}
function definitionSummary(d) {
  return h('div', { class: 'definition-summary', 'data-testid': 'definition-result' }, h('p', null, `Definition "${d.name}" saved: `, code(d.id), ` (${d.kind}${d.public ? ', public' : ''}).`), warningsBox(d.warnings, 'This definition'), d.params.length
    ? h('p', null, 'Parameters: ', d.params.map((p, i) => [i ? ', ' : '', code(`:${p.name}`), ` ${p.type}${p.nullable ? ' or null' : ''}${p.reserved ? ' (reserved: from the session on the public path)' : ''}`]))
    : h('p', null, 'No parameters.'), h('p', { class: 'hint' }, d.keyset ? 'Keyset paging is available.' : `Keyset paging is not available${d.keyset_unavailable ? `: ${d.keyset_unavailable}` : ''}.`));
}
export function renderSql(project) {
  const base = `/admin/v1/projects/${seg(project.slug)}/sql`;
  let definitions = [];
  const tablesSlot = h('div');
  const tableErrors = h('div');
  const tableAnnounce = h('div', { role: 'status', class: 'form-status' });
  const loadTables = async () => {
    const { tables } = await get(`${base}/tables`);
    return table(null, ['Table', 'Columns', 'Primary key', 'Indexes', 'Created', 'Actions'], tables.map((t) => [
      code(t.name),
      h('ul', { class: 'plain' }, t.columns.map((c) => h('li', null, code(c.name), ` ${c.type}${c.nullable ? '' : ' NOT NULL'}`))),
      code(t.primary_key),
      t.indexes.length ? list(t.indexes.map((i) => `${i.name} (${i.column}${i.unique ? ', unique' : ''}${i.building ? ', building' : ''})`)) : '—',
      time(t.created_at),
      button('Drop', (ev) => void (async () => {
        const ok = await confirmAction({
          title: `Drop table ${t.name}?`,
          message: 'The table and every row in it are deleted. This cannot be undone.',
          confirm: 'Drop table',
          danger: true,
          checkbox: 'Also delete the query definitions that use it',
        });
        if (!ok.ok)
          return;
        const r = await run(ev.currentTarget, tableErrors, () => del(`${base}/tables/${seg(t.name)}${ok.checked ? '?cascade=true' : ''}`));
        if (r) {
          const n = r.value.deleted_query_definitions?.length ?? 0;
          replace(tableAnnounce, h('p', { class: 'notice' }, `Table ${t.name} dropped${n ? `, with ${n} query definition(s)` : ''}.`));
          void fill(tablesSlot, loadTables);
          void fill(defsSlot, loadDefs);
        }
      })(), { class: 'small danger', 'data-testid': `drop-table-${t.name}`, 'aria-label': `Drop table ${t.name}` }),
    ]), { rowHeader: true, testid: 'sql-tables', empty: 'No tables yet.' });
  };
  const ddl = textareaField({
    label: 'Statement',
    name: 'sql',
    id: 'sql-ddl',
    rows: 4,
    required: true,
    spellcheck: false,
    placeholder: 'CREATE TABLE posts (id TEXT PRIMARY KEY, author_id TEXT NOT NULL, title TEXT)',
    hint: 'One CREATE TABLE (a PRIMARY KEY is required), CREATE [UNIQUE] INDEX, ALTER TABLE … ADD COLUMN, DROP TABLE [CASCADE] or DROP INDEX.',
  });
  const ddlForm = form({
    id: 'sql-ddl-form',
    label: 'Run a table statement',
    submit: 'Run statement',
    submitId: 'sql-ddl-run',
    fields: [ddl.wrap],
    onSubmit: async () => {
      const r = await post(`${base}/tables`, { sql: ddl.input.value });
      ddl.input.value = '';
      void fill(tablesSlot, loadTables);
      void fill(defsSlot, loadDefs);
      if (typeof r.dropped_index === 'string')
        return `Index ${r.dropped_index} dropped.`;
      if (typeof r.table === 'string')
        return `Table ${r.table} dropped.`;
      return `Table ${r.name ?? ''} is ready.`;
    },
  });
  const defsSlot = h('div');
  const defErrors = h('div');
  const defResult = h('div');
  let editing = null;
  const defName = inputField({ label: 'Name', name: 'name', id: 'def-name', required: true, maxlength: 200, spellcheck: false });
  const defSql = textareaField({
    label: 'SQL',
    name: 'sql',
    id: 'def-sql',
    rows: 5,
    required: true,
    spellcheck: false,
    placeholder: 'SELECT id, title FROM posts WHERE author_id = :author_id ORDER BY id',
    hint: 'One SELECT, INSERT, UPDATE or DELETE with named parameters (:name). No LIMIT/OFFSET: paging is per request. :end_user_id and :external_id come from the end user’s session on the public path.',
  });
  const defPublic = checkboxField({ label: 'Public', name: 'public', id: 'def-public', hint: 'Callable by public clients with the sql:execute scope.' });
  const formTitle = h('h2', null, 'Register a query definition');
  const cancelEdit = button('Cancel editing', () => stopEditing(), { hidden: true, id: 'def-cancel' });
  const defForm = form({
    id: 'def-form',
    label: 'Query definition',
    submit: 'Register definition',
    submitId: 'def-save',
    fields: [defName.wrap, defSql.wrap, defPublic.wrap],
    extraButtons: cancelEdit,
    onSubmit: async () => {
      const body = { name: defName.input.value.trim(), sql: defSql.input.value, public: defPublic.input.checked };
      const d = editing
        ? await put(`${base}/query-definitions/${seg(editing.id)}`, body)
        : await post(`${base}/query-definitions`, body);
      replace(defResult, definitionSummary(d));
      stopEditing();
      void fill(defsSlot, loadDefs);
    },
  });
  const startEditing = (d) => {
    editing = d;
    defName.input.value = d.name;
    defSql.input.value = d.sql;
    defPublic.input.checked = d.public;
    formTitle.textContent = `Replace definition "${d.name}"`;
    defForm.submit.textContent = 'Save changes';
    cancelEdit.hidden = false;
    replace(defResult);
    defName.input.focus();
  };
  const stopEditing = () => {
    editing = null;
    defName.input.value = '';
    defSql.input.value = '';
    defPublic.input.checked = false;
    formTitle.textContent = 'Register a query definition';
    defForm.submit.textContent = 'Register definition';
    cancelEdit.hidden = true;
  };
  const loadDefs = async () => {
    const r = await get(`${base}/query-definitions`);
    definitions = r.query_definitions;
    drawRunSelect();
    return table(null, ['Name', 'SQL', 'Public', 'Tables', 'Created', 'Actions'], definitions.map((d) => [
      d.name,
      h('pre', { class: 'sql' }, d.sql),
      d.public ? badge('Public', 'info') : 'No',
      list(d.tables),
      time(d.created_at),
      h('div', { class: 'row-actions' }, button('Run', () => {
        runSelect.input.value = d.id;
        runSelect.input.dispatchEvent(new Event('change'));
        runSection.scrollIntoView({ block: 'start' });
        runParams.input.focus();
      }, { class: 'small', 'aria-label': `Run ${d.name}` }), button('Edit', () => startEditing(d), { class: 'small', 'aria-label': `Edit ${d.name}` }), button('Delete', (ev) => void (async () => {
        const ok = await confirmAction({ title: `Delete definition "${d.name}"?`, message: 'Apps calling it get sql_template_not_found from now on.', confirm: 'Delete definition', danger: true });
        if (!ok.ok)
          return;
        const r2 = await run(ev.currentTarget, defErrors, () => del(`${base}/query-definitions/${seg(d.id)}`));
        if (r2) {
          if (editing?.id === d.id)
            stopEditing();
          void fill(defsSlot, loadDefs);
        }
      })(), { class: 'small danger', 'aria-label': `Delete ${d.name}` })),
    ]), { rowHeader: true, testid: 'sql-definitions', empty: 'No query definitions yet.' });
  };
  const runSelectSlot = h('div');
  let runSelect = selectField({ label: 'Definition', name: 'query_definition_id', id: 'sql-run-def', options: [], required: true });
  const paramsHint = h('p', { class: 'hint', id: 'sql-run-params-types' });
  const runParams = textareaField({
    label: 'Parameters (JSON object)',
    name: 'params',
    id: 'sql-run-params',
    rows: 4,
    spellcheck: false,
    value: '{}',
    hint: 'For example {"author_id": "user-1"}. On this admin path, :end_user_id and :external_id are taken from here too.',
  });
  let paramsTouched = false;
  runParams.input.addEventListener('input', () => (paramsTouched = true));
  const runLimit = inputField({ label: 'Rows per page', name: 'limit', id: 'sql-run-limit', type: 'number', min: 1, max: 1000, value: 100, inputmode: 'numeric' });
  const runMode = selectField({ label: 'Paging', name: 'cursor_mode', id: 'sql-run-mode', options: [['offset', 'Offset'], ['keyset', 'Keyset']], value: 'offset' });
  const resultSlot = h('div', { 'data-testid': 'sql-result' });
  const onPick = () => {
    const id = runSelect.input.value;
    replace(paramsHint);
    if (!id)
      return;
    get(`${base}/query-definitions/${seg(id)}`)
      .then((d) => {
      if (runSelect.input.value !== id)
        return;
      replace(paramsHint, d.params.length ? ['Parameters: ', d.params.map((p, i) => [i ? ', ' : '', code(p.name), ` (${p.type}${p.nullable ? ', nullable' : ''})`])] : 'This definition takes no parameters.', d.keyset ? '' : '. Keyset paging is not available for it.');
      if (!paramsTouched) {
        const template = {};
        for (const p of d.params)
          template[p.name] = null;
        runParams.input.value = JSON.stringify(template, null, 2);
      }
    })
      .catch((e) => replace(paramsHint, errorBox(e)));
  };
  function drawRunSelect() {
    const previous = runSelect.input.value;
    runSelect = selectField({
      label: 'Definition',
      name: 'query_definition_id',
      id: 'sql-run-def',
      required: true,
      options: [['', definitions.length ? 'Choose a definition' : 'No definitions yet'], ...definitions.map((d) => [d.id, d.name])],
      value: definitions.some((d) => d.id === previous) ? previous : '',
    });
    runSelect.input.addEventListener('change', () => {
      paramsTouched = false;
      onPick();
    });
    replace(runSelectSlot, runSelect.wrap);
  }
  drawRunSelect();
  let page = 0;
  const execute = async (req, errorsBox) => {
    const res = await post(`${base}/execute`, req);
    page = req.cursor ? page + 1 : 1;
    const next = res.next_cursor
      ? button('Next page', (ev) => void run(ev.currentTarget, errorsBox, () => execute({ ...req, cursor: res.next_cursor ?? undefined }, errorsBox)), { id: 'sql-run-next', 'data-testid': 'sql-run-next' })
      : null;
    replace(resultSlot, h('h3', null, typeof res.affected_rows === 'number' ? 'Result' : `Page ${page}`), warningsBox(res.warnings, 'This run'), typeof res.affected_rows === 'number' ? h('p', { 'data-testid': 'sql-affected' }, `${res.affected_rows} row(s) affected.`) : rowsTable(res.rows), typeof res.affected_rows !== 'number' ? h('p', { class: 'muted' }, `${res.rows.length} row(s)${res.next_cursor ? '; more after these.' : '; no more.'}`) : null, next ? h('div', { class: 'actions' }, next) : null);
  };
  const runForm = form({
    id: 'sql-run-form',
    label: 'Run a query definition',
    submit: 'Run',
    submitId: 'sql-run',
    fields: [runSelectSlot, paramsHint, runParams.wrap, h('div', { class: 'pair' }, runLimit.wrap, runMode.wrap)],
    onSubmit: async (parts) => {
      let params;
      try {
        params = JSON.parse(runParams.input.value.trim() || '{}');
      }
      catch (e) {
        throw new ApiError(422, 'Some values are not valid.', null, [{ loc: ['body', 'params'], msg: `not valid JSON: ${e.message}` }], null);
      }
      if (typeof params !== 'object' || params === null || Array.isArray(params)) {
        throw new ApiError(422, 'Some values are not valid.', null, [{ loc: ['body', 'params'], msg: 'must be a JSON object, e.g. {"author_id": "user-1"}' }], null);
      }
      if (!runSelect.input.value) {
        runSelect.input.focus();
        throw new ApiError(400, 'Choose a definition to run.', null, [], null);
      }
      const req = {
        query_definition_id: runSelect.input.value,
        params: params,
        cursor_mode: runMode.input.value,
      };
      if (runLimit.input.value)
        req.limit = Number(runLimit.input.value);
      page = 0;
      await execute(req, parts.errors);
    },
  });
  const runSection = section('Run a query definition', 2, h('p', { class: 'hint' }, 'Runs as your backend would with a secret key.'), runForm.form, resultSlot);
  void fill(tablesSlot, loadTables);
  void fill(defsSlot, loadDefs);
  return h('div', null, section('Tables', 2, tableErrors, tableAnnounce, tablesSlot), section('Run a table statement', 2, ddlForm.form), section('Query definitions', 2, defErrors, defsSlot), h('section', { class: 'card' }, formTitle, defResult, defForm.form), runSection);
}
