// The Events view's webview: renders the records the extension sends ({kind: 'reset' | 'append'}) and sends
// back the filter the user picks ({kind: 'filter', type, agent, text}). No inline handlers (the CSP allows only
// this nonce'd script); text is set with textContent, never parsed as HTML.
(function () {
  const vscode = acquireVsCodeApi();
  const list = document.getElementById('list');
  const count = document.getElementById('count');
  const typeSelect = document.getElementById('type');
  const agentSelect = document.getElementById('agent');
  const text = document.getElementById('text');
  const follow = document.getElementById('follow');
  /** Most rows kept in the page (the extension keeps as many records). */
  const MAX_ROWS = 500;

  function el(tag, className, content) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function tone(type) {
    if (/Failed|Rejected|Revoked|Denied/.test(type)) return 'fail';
    if (/Completed|Resolved/.test(type)) return 'ok';
    if (/ToolCallRequested|Approval/.test(type)) return 'wait';
    return '';
  }

  function rowOf(r) {
    const li = el('li');
    li.tabIndex = 0;
    li.dataset.seq = String(r.seq);
    li.dataset.type = r.type;
    li.appendChild(el('span', 'seq', String(r.seq)));
    li.appendChild(el('span', `type ${tone(r.type)}`, r.type));
    const meta = [r.agent, r.run].filter(Boolean).join(' · ');
    if (meta) li.appendChild(el('span', 'meta', meta));
    li.appendChild(el('span', 'time', new Date(r.at).toLocaleTimeString()));
    li.title = 'Click to show the event';
    const toggle = () => {
      const open = li.querySelector('pre');
      if (open) open.remove();
      else li.appendChild(el('pre', '', r.json));
    };
    li.addEventListener('click', toggle);
    li.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        toggle();
      }
    });
    return li;
  }

  function setOptions(select, first, options, selected) {
    select.replaceChildren(el('option', '', first));
    select.firstChild.value = '';
    for (const o of options) {
      const option = el('option', '', o.label);
      option.value = o.value;
      select.appendChild(option);
    }
    if (selected && !options.some((o) => o.value === selected)) {
      const option = el('option', '', selected);
      option.value = selected;
      select.appendChild(option);
    }
    select.value = selected || '';
  }

  function choices(c) {
    setOptions(typeSelect, 'all types', c.types.map((t) => ({ value: t, label: t })), typeSelect.value);
    setOptions(agentSelect, 'all agents', c.agents.map((a) => ({ value: a.id, label: a.name === a.id ? a.id : `${a.name} (${a.id.slice(0, 8)})` })), agentSelect.value);
  }

  function shown() {
    count.textContent = `${list.children.length} event${list.children.length === 1 ? '' : 's'}`;
    if (follow.checked) window.scrollTo(0, document.body.scrollHeight);
  }

  window.addEventListener('message', (e) => {
    const m = e.data;
    if (m.kind === 'reset') {
      typeSelect.value = m.filter.type;
      agentSelect.value = m.filter.agent;
      if (document.activeElement !== text) text.value = m.filter.text;
      choices(m.choices);
      typeSelect.value = m.filter.type;
      agentSelect.value = m.filter.agent;
      list.replaceChildren(...m.records.map(rowOf));
    } else if (m.kind === 'append') {
      if (m.dropBefore) while (list.firstChild && Number(list.firstChild.dataset.seq) < m.dropBefore) list.firstChild.remove();
      for (const r of m.records) list.appendChild(rowOf(r));
      while (list.children.length > MAX_ROWS) list.firstChild.remove();
      choices(m.choices);
    }
    shown();
  });

  const send = () => vscode.postMessage({ kind: 'filter', type: typeSelect.value, agent: agentSelect.value, text: text.value });
  typeSelect.addEventListener('change', send);
  agentSelect.addEventListener('change', send);
  let typing;
  text.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(send, 200);
  });
  follow.addEventListener('change', shown);
  vscode.postMessage({ kind: 'ready' });
})();
