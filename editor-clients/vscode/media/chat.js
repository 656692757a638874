// The chat webview: renders the transcript the extension posts and posts back questions,
// citation clicks, stop and new-chat. Text is set with textContent, never parsed as HTML.
(function () {
  const vscode = acquireVsCodeApi();
  const turnsEl = document.getElementById('turns');
  const question = document.getElementById('question');

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function render(turns) {
    turnsEl.replaceChildren();
    for (const turn of turns) {
      const box = el('section', 'turn');
      box.append(el('div', 'question', turn.question || '…'));
      box.append(el('pre', 'answer', turn.text || (turn.done ? '' : '…')));
      const final = turn.final || {};
      for (const note of [...(final.notes || []), ...(final.error ? [final.error] : [])]) {
        box.append(el('div', 'note', note));
      }
      if (final.cancelled) box.append(el('div', 'note', 'stopped'));
      if (turn.spans.length) {
        const list = el('ul', 'spans');
        for (const span of turn.spans) {
          const link = el('a', 'span', `${span.path}:${span.startLine}-${span.endLine}`);
          link.href = '#';
          link.addEventListener('click', (event) => {
            event.preventDefault();
            vscode.postMessage({ type: 'open', span });
          });
          const item = el('li');
          item.append(link);
          list.append(item);
        }
        box.append(list);
      }
      turnsEl.append(box);
    }
    turnsEl.lastElementChild?.scrollIntoView({ block: 'end' });
  }

  window.addEventListener('message', (event) => {
    if (event.data.type === 'turns') render(event.data.turns);
  });
  document.getElementById('ask').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (text) vscode.postMessage({ type: 'ask', question: text });
    question.value = '';
  });
  question.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      document.getElementById('ask').requestSubmit();
    }
  });
  document.getElementById('cancel').addEventListener('click', () => vscode.postMessage({ type: 'cancel' }));
  document.getElementById('new').addEventListener('click', () => vscode.postMessage({ type: 'new' }));
  vscode.postMessage({ type: 'ready' });
})();
