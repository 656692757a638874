/**
 * The arena: two models answer one question blind (`ragls/arena`), shown side by side as A and B;
 * the vote (`ragls/arenaVote`) records it and reveals who was who. Nothing here imports `vscode`,
 * so the Node tests drive the real server with this very code; extension.ts only adds the input
 * box, the webview and the quick pick.
 */

import type { Connection } from './protocol';

export interface ArenaMatch {
  id: string;
  kind: 'answer' | 'completion';
  question: string;
  a: string;
  b: string;
  context: { path: string; start_line: number; end_line: number }[];
}

export interface ArenaVerdict {
  id: string;
  vote: string;
  a: string; // the model that wrote A
  b: string;
  votesFile: string;
}

/** The choices of the vote, as the quick pick shows them, and what each sends. */
export const VOTES = [
  { label: 'A is better', vote: 'a' },
  { label: 'B is better', vote: 'b' },
  { label: 'Tie', vote: 'tie' },
  { label: 'Both are bad', vote: 'both_bad' },
] as const;

/** Two arena models answer `question` (the pair is the server's `arena.models`). */
export function askArena(connection: Connection, question: string, uri?: string): Promise<ArenaMatch> {
  return connection.sendRequest<ArenaMatch>('ragls/arena', { question, uri });
}

/** Record the vote on `match`; the names of both models come back. */
export function voteArena(connection: Connection, match: ArenaMatch, vote: string): Promise<ArenaVerdict> {
  return connection.sendRequest<ArenaVerdict>('ragls/arenaVote', { id: match.id, vote });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The webview's page: A and B side by side, headed by their letters only until `verdict`. */
export function arenaHtml(match: ArenaMatch, verdict?: ArenaVerdict): string {
  const side = (letter: string, text: string, name?: string) =>
    `<section><h2>${letter}${name ? `: ${escapeHtml(name)}` : ''}</h2>` +
    `<pre>${escapeHtml(text || '(no answer)')}</pre></section>`;
  const sources = match.context.map((s) => `${escapeHtml(s.path)}:${s.start_line}-${s.end_line}`).join(', ');
  return `<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';">
<style>main{display:flex;gap:1em}section{flex:1;min-width:0}pre{white-space:pre-wrap}</style></head>
<body><h1>${escapeHtml(match.question)}</h1><main>${side('A', match.a, verdict?.a)}${side('B', match.b, verdict?.b)}</main>
<p>${verdict ? `Vote: ${escapeHtml(verdict.vote)}, recorded in ${escapeHtml(verdict.votesFile)}` : 'Vote in the quick pick.'}</p>
<p>Both were given: ${sources || 'no retrieved code'}</p></body></html>`;
}
