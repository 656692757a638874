-- Tests of the ragls plugin in a real Neovim with a real `ragls serve` (on PATH).
-- Run: nvim --headless -u NONE -i NONE --cmd 'set rtp^=editor-clients/neovim' -c 'luafile editor-clients/neovim/test/ragls_test.lua'
-- (tests/editors/test_neovim.py does this). Each test prints `ok <name>` or `FAIL <name>: <why>`;
-- Neovim exits 0 when all passed. RAGLS_TESTS (Lua patterns, space-separated) picks some of them.
-- The tests share one server on a copy of tests/fixtures/minirepo; the bundled local model
-- answers, with greedy sampling so answers repeat.

local api = vim.api
local here = vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2))
local fixture = vim.fs.normalize(here .. '/../../../tests/fixtures/minirepo')
local TYPED = { 'def add(a, b):', '    return a +' } -- an unsaved buffer; greedy SmolLM2 completes " b"

vim.cmd('filetype on')
vim.cmd('runtime! plugin/ragls.lua') -- -u NONE loads no plugins
vim.o.swapfile = false
vim.o.hidden = true
vim.o.showmode = false -- keep '-- INSERT --' out of the results

local ragls = require('ragls')
local chat = require('ragls.chat')
local inline = require('ragls.inline')

-- Small and deterministic: greedy sampling, short answers, no dense layer.
local SETTINGS = {
  index = { embeddings = false },
  models = { chat = { temperature = 0, context_length = 2048 }, completion = { temperature = 0, context_length = 2048 } },
  recipes = { answer_tokens = 48, context_tokens = 512 },
  -- No latency budget: what a test gets does not depend on how busy the machine is.
  server = { debounce_ms = 0, latency_budget_ms = { automatic = 0, invoked = 0 } },
}

ragls.setup({ settings = SETTINGS, inline = { engine = 'extmark', delay_ms = 50 } })

local notes = {} ---@type string[] every vim.notify message, newest last
vim.notify = function(msg)
  table.insert(notes, msg)
end

local finals = {} ---@type table[] final chat messages, newest last
local deltas = 0
local on_delta = chat.on_delta
chat.on_delta = function(err, msg, ctx) -- ragls.start() hands this wrapper to the client
  if msg.done then
    table.insert(finals, msg)
  else
    deltas = deltas + 1
  end
  return on_delta(err, msg, ctx)
end

--- Let Neovim run (typed keys, timers, the server's messages) until `pred` holds; its value.
local function wait(pred, what, seconds)
  local deadline = vim.uv.now() + (seconds or 180) * 1000
  while true do
    local ok, value = pcall(pred)
    if ok and value then
      return value
    end
    if vim.uv.now() > deadline then
      error('timed out waiting for ' .. what, 2)
    end
    local co = coroutine.running()
    vim.defer_fn(function()
      coroutine.resume(co)
    end, 50)
    coroutine.yield()
  end
end

local function eq(want, got, what)
  if not vim.deep_equal(want, got) then
    error(('%s: want %s, got %s'):format(what, vim.inspect(want), vim.inspect(got)), 2)
  end
end

local function check(cond, what)
  if not cond then
    error(what, 2)
  end
  return cond
end

--- Type `keys` as the user would (mappings apply).
local function type_keys(keys)
  api.nvim_feedkeys(vim.keycode(keys), 'mt', false)
end

--- A new git work tree holding a copy of the fixture.
local function new_repo(name)
  local root = vim.fn.tempname() .. '-' .. name
  vim.fn.mkdir(root, 'p')
  vim.system({ 'cp', '-R', fixture .. '/.', root }):wait()
  vim.system({ 'git', 'init', '-q' }, { cwd = root }):wait()
  return vim.uv.fs_realpath(root)
end

local function lines(buf)
  return api.nvim_buf_get_lines(buf or 0, 0, -1, true)
end

local function note_matching(pattern)
  for i = #notes, 1, -1 do
    if notes[i]:find(pattern) then
      return notes[i]
    end
  end
end

local function ready()
  return (ragls.status() or ''):find(': ready,')
end

--- The ghost text shown by extmarks of `namespace` in the current buffer, or nil.
local function ghost(namespace)
  local mark = api.nvim_buf_get_extmarks(0, namespace, 0, -1, { details = true })[1]
  if not mark then
    return nil
  end
  local text = mark[4].virt_text and mark[4].virt_text[1][1] or ''
  for _, line in ipairs(mark[4].virt_lines or {}) do
    text = text .. '\n' .. line[1][1]
  end
  return text ~= '' and text or nil
end

local function insert_at_end()
  type_keys('<Esc>GA')
  wait(function()
    local row, col = unpack(api.nvim_win_get_cursor(0))
    return vim.fn.mode() == 'i' and row == api.nvim_buf_line_count(0) and col == #api.nvim_get_current_line()
  end, 'insert mode at the end of the buffer')
end

local function leave_insert()
  type_keys('<Esc>')
  wait(function()
    return vim.fn.mode() == 'n'
  end, 'normal mode')
end

local repo, calc -- the shared session: its repository and the unsaved buffer shop/calc.py

local function session()
  if not calc then
    repo = new_repo('nvim')
    vim.cmd.cd(repo)
    vim.cmd.edit(repo .. '/shop/calc.py')
    calc = api.nvim_get_current_buf()
    api.nvim_buf_set_lines(calc, 0, -1, true, TYPED)
  end
  vim.cmd('silent! tabonly')
  if api.nvim_get_current_buf() ~= calc then
    vim.cmd.buffer(calc)
  end
  vim.cmd('silent! only')
  wait(function()
    local client = vim.lsp.get_clients({ name = 'ragls', bufnr = calc })[1]
    return client and client.initialized
  end, 'the server to start for calc.py')
  wait(ready, 'the index')
  return calc
end

local function reset_calc()
  leave_insert()
  api.nvim_buf_set_lines(calc, 0, -1, true, TYPED)
end

local function chat_section(heading)
  local buf = vim.tbl_filter(function(b)
    return vim.startswith(api.nvim_buf_get_name(b), 'ragls://chat/')
  end, api.nvim_list_bufs())[1]
  local text = table.concat(lines(buf), '\n')
  local at = check(text:find(heading, 1, true), 'no section ' .. heading)
  return text:sub(at + #heading + 1), buf
end

local tests = {}
local function test(name, fn)
  table.insert(tests, { name = name, fn = fn })
end

test('starts-the-server-for-the-project-root', function()
  session()
  local client = vim.lsp.get_clients({ name = 'ragls', bufnr = calc })[1]
  eq(repo, client.root_dir, 'root_dir')
  check(client.server_capabilities.inlineCompletionProvider, 'no inlineCompletionProvider')
  -- the server saw our inlineCompletion capability: no textDocument/completion fallback
  eq(nil, client.server_capabilities.completionProvider, 'completionProvider')
  eq('extmark', vim.b[calc].ragls_inline, 'the engine setup() forced')
end)

test('extmark-engine-completes-on-demand-and-accepts', function()
  session()
  reset_calc()
  insert_at_end()
  type_keys('<M-\\>') -- the trigger key
  eq(' b', wait(function() return ghost(inline.ns) end, 'the ghost text'), 'ghost text')
  eq(TYPED, lines(), 'buffer before accepting') -- ghost text is not buffer text
  type_keys('<Tab>')
  wait(function() return lines()[2] == '    return a + b' end, 'the accepted completion')
  eq(nil, ghost(inline.ns), 'ghost text after accepting')
  eq({ 2, #'    return a + b' }, api.nvim_win_get_cursor(0), 'cursor after the inserted text')
  leave_insert()
end)

test('extmark-engine-completes-after-typing-and-dismisses', function()
  session()
  reset_calc()
  api.nvim_buf_set_lines(calc, 1, 2, true, { '    return a' })
  insert_at_end()
  type_keys(' +')
  eq(' b', wait(function() return ghost(inline.ns) end, 'an automatic completion'), 'ghost text')
  type_keys('<C-]>')
  wait(function() return not ghost(inline.ns) end, 'the ghost text to go')
  eq(TYPED, lines(), 'buffer after dismissing')
  leave_insert()
end)

test('builtin-engine-completes-and-accepts', function()
  session()
  check(vim.lsp.inline_completion, 'this Neovim has no vim.lsp.inline_completion')
  ragls.setup({ inline = { engine = 'auto' } })
  vim.cmd.edit(repo .. '/shop/calc2.py')
  local buf = api.nvim_get_current_buf()
  api.nvim_buf_set_lines(buf, 0, -1, true, TYPED)
  wait(function() return vim.b[buf].ragls_inline end, 'calc2.py to be attached')
  eq('builtin', vim.b[buf].ragls_inline, 'engine')
  local builtin_ns = api.nvim_get_namespaces()['nvim.lsp.inline_completion']
  insert_at_end() -- the built-in engine asks on entering insert mode
  -- (calc.py, open with the same text, is in the prompt's context: the model's answer varies)
  local text = wait(function() return ghost(builtin_ns) end, 'the built-in ghost text')
  eq(TYPED, lines(buf), 'buffer before accepting')
  type_keys('<Tab>')
  local want = vim.split(table.concat(TYPED, '\n') .. text, '\n')
  wait(function() return vim.deep_equal(lines(buf), want) end, 'the accepted completion ' .. vim.inspect(want))
  leave_insert()
  vim.cmd('bwipeout!') -- closed unsaved: the server forgets it
  ragls.setup({ inline = { engine = 'extmark' } })
  vim.cmd.buffer(calc)
end)

test('explain-code-action-streams-into-the-chat-buffer', function()
  session()
  vim.cmd.edit(repo .. '/shop/cart.py')
  wait(function() return vim.lsp.get_clients({ name = 'ragls', bufnr = 0 })[1] end, 'cart.py to be attached')
  vim.fn.search('def add')
  local before, seen = #finals, deltas
  vim.lsp.buf.code_action({ apply = true, filter = function(a) return a.kind == 'refactor.ragls.explain' end })
  wait(function() return #finals > before end, "the recipe's final message")
  local final = finals[#finals]
  eq('explain', final.recipe, 'recipe')
  eq(nil, final.error, 'error')
  check(#final.answer > 0 and deltas > seen, 'no streamed answer')
  -- the streamed deltas, joined, are the whole answer
  local section = chat_section('Recipe explain on cart.py')
  check(vim.startswith(section, final.answer), 'chat buffer lacks the answer:\n' .. section)
  vim.cmd.buffer(calc)
end)

test('docstring-code-action-edits-the-buffer', function()
  session()
  reset_calc()
  api.nvim_buf_set_lines(calc, 1, 2, true, { '    return a + b   ', '' }) -- the recipe's code has no trailing blanks
  api.nvim_win_set_cursor(0, { 1, 0 })
  local before = #finals
  vim.lsp.buf.code_action({ apply = true, filter = function(a) return a.kind == 'refactor.ragls.docstring' end })
  wait(function() return #finals > before end, 'the docstring recipe')
  local final = finals[#finals]
  eq('docstring', final.recipe, 'recipe')
  eq(nil, final.error, 'error')
  -- Neovim applied the server's workspace/applyEdit: the lines are now the recipe's code
  -- (the bundled model is too small to be trusted to write the docstring itself)
  eq(true, final.applied, 'applied')
  eq(final.code .. '\n', table.concat(lines(calc), '\n'), 'buffer after the edit')
  check(chat_section('Recipe docstring on calc.py'):find('(applied to the buffer)', 1, true), 'no applied note')
end)

test('ask-streams-an-answer-with-citations-that-open', function()
  session()
  local before, seen = #finals, deltas
  vim.cmd('RaglsAsk What does SmtpMailer do when it sends a message?')
  wait(function() return #finals > before end, 'the answer')
  local final = finals[#finals]
  eq('answer', final.route, 'route')
  eq(nil, final.error, 'error')
  check(deltas - seen > 2, 'the answer did not stream in pieces')
  local section, buf = chat_section('Q: What does SmtpMailer do when it sends a message?')
  check(vim.startswith(section, final.answer), 'chat buffer lacks the answer:\n' .. section)
  local kind = #(final.citations or {}) > 0 and 'Citations:' or 'Sources (nothing was cited):'
  check(section:find(kind, 1, true), 'no ' .. kind .. ' in\n' .. section)
  eq(buf, api.nvim_get_current_buf(), 'the chat window has the focus')
  local links = api.nvim_buf_get_extmarks(buf, chat.ns_links, 0, -1, {})
  local row = check(links[#links], 'no citation line')[2]
  local loc = (final.citations and #final.citations > 0 and final.citations or final.sources)
  loc = loc[#loc]
  check(lines(buf)[row + 1]:find(('%s:%d-%d'):format(loc.path, loc.startLine, loc.endLine), 1, true),
    'the last link line is not the last location')
  api.nvim_win_set_cursor(0, { row + 1, 0 })
  type_keys('<CR>')
  wait(function() return api.nvim_buf_get_name(0) == repo .. '/' .. loc.path end, 'the cited file')
  eq(loc.startLine, api.nvim_win_get_cursor(0)[1], 'cursor line')
end)

test('follow-up-and-search-route-in-the-chat-buffer', function()
  session()
  local before = #finals
  vim.cmd('RaglsAsk SmtpMailer')
  wait(function() return #finals > before end, 'the search answer')
  eq('search', finals[#finals].route, 'route')
  check(chat_section('Q: SmtpMailer'):find('Results:\n  shop/mailer.py:', 1, true), 'no results in the chat')
  local chat_id = finals[#finals].chatId
  vim.cmd('RaglsAsk And what does it need to connect?') -- in the chat buffer: a follow-up
  wait(function() return #finals > before + 1 end, 'the follow-up')
  eq(chat_id, finals[#finals].chatId, 'chat id')
  eq(2, finals[#finals].turn, 'turn')
  vim.cmd.buffer(calc)
end)

test('search-fills-the-quickfix-list', function()
  session()
  vim.fn.setqflist({}, 'r', { title = 'none', items = {} })
  vim.cmd('RaglsSearch SmtpMailer')
  local qf = wait(function()
    local list = vim.fn.getqflist({ title = 1, items = 1 })
    return list.title == 'ragls search: SmtpMailer' and list
  end, 'the quickfix list')
  check(#qf.items > 0, 'no results')
  eq(repo .. '/shop/mailer.py', api.nvim_buf_get_name(qf.items[1].bufnr), 'best hit')
  for _, item in ipairs(qf.items) do
    local name = api.nvim_buf_get_name(item.bufnr)
    check(vim.uv.fs_stat(name) and item.lnum >= 1 and item.lnum <= #vim.fn.readfile(name), 'bad entry ' .. name)
  end
  check(qf.items[1].text:find('^%S+  %d%.%d+$') and qf.items[1].end_lnum >= qf.items[1].lnum,
    'entry: ' .. vim.inspect(qf.items[1]))
  eq('quickfix', vim.bo[api.nvim_get_current_buf()].buftype, 'the quickfix window is open')
  vim.cmd.cclose()
end)

test('status-names-the-index-state', function()
  session()
  vim.cmd.RaglsStatus()
  check(note_matching('^ragls .+: ready, [1-9]%d* files, [1-9]%d* chunks'), 'status: ' .. tostring(notes[#notes]))
end)

test('checkhealth-reports-the-server', function()
  session()
  vim.cmd('checkhealth ragls')
  local text = table.concat(lines(), '\n')
  check(text:find('OK `ragls` is ', 1, true), text)
  check(text:find('serves ' .. repo, 1, true), text)
  vim.cmd.bwipeout()
end)

test('models-picker-uses-a-model-and-writes-the-config', function()
  session()
  -- The server writes the user config file: only a scratch one (tests/editors/test_neovim.py sets it).
  local config = check(vim.env.RAGLS_CONFIG, 'RAGLS_CONFIG must name a scratch config file')
  local bundled = vim.trim(vim.fn.system({ 'python', '-c',
    'from ragls.llm.gguf import bundled_model_path; print(bundled_model_path())' }))
  check(vim.v.shell_error == 0 and vim.uv.fs_stat(bundled), 'the bundled model: ' .. bundled)
  ragls.config.settings.models.search_paths = { vim.fs.dirname(bundled) }
  ragls.config.settings.models.scan_ports = {}
  ragls.send_settings()
  local select, offered = vim.ui.select, {}
  vim.ui.select = function(items, opts, on_choice) -- the user picks the first entry each time
    table.insert(offered, vim.tbl_map(opts.format_item or tostring, items))
    on_choice(items[1])
  end
  local ok, err = pcall(function()
    vim.cmd.RaglsModels()
    wait(function() return note_matching('^ragls: models%.chat = ') end, 'the model to be used')
  end)
  vim.ui.select = select
  check(ok, tostring(err))
  check(offered[1][1]:find('SmolLM2-135M-Instruct.Q4_1  [search-path] llama 135M Q4_1', 1, true), vim.inspect(offered))
  eq({ 'chat', 'completion', 'embedding' }, offered[2], 'the roles offered')
  local written = table.concat(vim.fn.readfile(config), '\n')
  check(written:find('path = "' .. bundled .. '"', 1, true) and written:find('provider = "llama_cpp"', 1, true),
    written)
end)

test('arena-shows-both-answers-blind-then-takes-the-vote', function()
  session()
  -- The second model and the votes file come from tests/editors/test_neovim.py.
  local second = check(vim.env.RAGLS_ARENA_MODEL, 'RAGLS_ARENA_MODEL must name a second GGUF file')
  local votes = vim.fn.tempname() .. '-votes.jsonl'
  ragls.config.settings.arena = { models = { 'chat', second }, votes_file = votes }
  ragls.send_settings()
  local select, offered = vim.ui.select, nil
  vim.ui.select = function(items, opts, on_choice) -- the user reads both, then votes A
    offered = { prompt = opts.prompt, items = items, windows = #api.nvim_tabpage_list_wins(0),
      bars = vim.tbl_map(function(w) return vim.wo[w].winbar end, api.nvim_tabpage_list_wins(0)) }
    on_choice(items[1], 1)
  end
  local ok, err = pcall(function()
    vim.cmd.RaglsArena('how is a discount applied?')
    wait(function() return note_matching('^ragls: arena: A was ') end, 'the vote to be recorded', 300)
  end)
  vim.ui.select = select
  ragls.config.settings.arena = nil
  ragls.send_settings()
  check(ok, tostring(err))
  eq('ragls arena: which answer is better?', offered.prompt, 'prompt')
  eq({ 'A is better', 'B is better', 'Tie', 'Both are bad' }, offered.items, 'choices')
  eq({ 2, { 'A', 'B' } }, { offered.windows, offered.bars }, 'a split with A and B, names hidden')
  local record = vim.json.decode(vim.fn.readfile(votes)[1])
  eq('a', record.vote, 'vote')
  local wins = api.nvim_tabpage_list_wins(0)
  eq({ 'A: ' .. record.a.model, 'B: ' .. record.b.model }, { vim.wo[wins[1]].winbar, vim.wo[wins[2]].winbar },
    'the names shown after the vote')
  local shown = table.concat(api.nvim_buf_get_lines(api.nvim_win_get_buf(wins[1]), 0, -1, true), '\n')
  eq(record.a.answer ~= '' and vim.trim(record.a.answer) or '(no answer)', vim.trim(shown), 'answer A')
  check(note_matching('A was SmolLM2%-135M%-Instruct%.Q4_[01], B was SmolLM2%-135M%-Instruct%.Q4_[01]'),
    tostring(notes[#notes]))
  vim.cmd('tabclose')
end)

-- Bad input

test('missing-binary-names-the-command', function()
  session()
  ragls.setup({ cmd = { 'ragls-no-such-program', 'serve' } })
  local root = new_repo('missing')
  vim.cmd.edit(root .. '/shop/cart.py')
  check(note_matching('cannot start `ragls%-no%-such%-program serve`: `ragls%-no%-such%-program` is not an executable'),
    'no message: ' .. tostring(notes[#notes]))
  eq({}, vim.lsp.get_clients({ bufnr = 0 }), 'clients')
  -- the command fixed: setup() serves the buffers opened before it (as with a lazily loaded plugin)
  ragls.setup({ cmd = { 'ragls', 'serve' } })
  local client = wait(function()
    local c = vim.lsp.get_clients({ name = 'ragls', bufnr = 0 })[1]
    return c and c.initialized and c
  end, 'a server for the repository')
  eq(root, client.root_dir, 'root_dir')
  vim.cmd.bwipeout()
  vim.lsp.stop_client(client.id)
  wait(function() return client:is_stopped() end, 'the server to stop')
end)

test('server-crashing-at-start-is-explained', function()
  session()
  ragls.setup({ cmd = { 'ragls', 'serve', '--no-such-flag' } })
  local root = new_repo('crash')
  vim.cmd.edit(root .. '/shop/cart.py')
  local msg = wait(function() return note_matching('before it started') end, 'the message')
  check(msg:find('`ragls serve --no-such-flag` exited (exit 2) before it started', 1, true), msg)
  check(msg:find('unrecognized arguments: --no-such-flag', 1, true), msg)
  eq({}, vim.lsp.get_clients({ bufnr = 0 }), 'clients')
  vim.cmd.bwipeout()
  ragls.setup({ cmd = { 'ragls', 'serve' } })
end)

test('remote-and-non-file-buffers-are-skipped', function()
  session()
  for _, name in ipairs({ 'scp://build-host//src/app.py', 'fugitive:///repo/.git//0/app.py' }) do
    local buf = api.nvim_create_buf(true, false)
    api.nvim_buf_set_name(buf, name)
    vim.cmd.buffer(buf)
    vim.bo[buf].filetype = 'python' -- what a remote-editing plugin does; FileType starts ragls
    eq({}, vim.lsp.get_clients({ bufnr = buf }), 'clients of ' .. name)
    vim.cmd('RaglsAsk hi')
    check(note_matching('is not a local file %(ragls serves local files only%)'), 'no message for ' .. name)
    vim.cmd('RaglsStart')
    check(note_matching('not started: ' .. vim.pesc(name)), 'RaglsStart: ' .. tostring(notes[#notes]))
    vim.cmd.bwipeout()
  end
  vim.cmd.enew() -- a scratch buffer with no file
  vim.bo.buftype = 'nofile'
  vim.cmd('RaglsStart')
  check(note_matching('not started: not a file buffer'), 'scratch: ' .. tostring(notes[#notes]))
  eq({}, vim.lsp.get_clients({ bufnr = 0 }), 'clients of the scratch buffer')
  -- no file, but the current directory is the project: questions work
  eq(vim.lsp.get_clients({ name = 'ragls', bufnr = calc })[1], ragls.client(), 'client of the scratch buffer')
  vim.cmd.bwipeout()
end)

test('huge-file-gets-no-inline-completion', function()
  session()
  local big = repo .. '/shop/generated_table.py'
  local rows = {}
  for i = 1, 60000 do
    rows[i] = ('ROW_%d = %d  # a generated constant, not code to read'):format(i, i)
  end
  vim.fn.writefile(rows, big)
  vim.cmd.edit(big)
  local buf = api.nvim_get_current_buf()
  local client = wait(function() return vim.lsp.get_clients({ name = 'ragls', bufnr = buf })[1] end, 'attached')
  eq('off', vim.b[buf].ragls_inline, 'inline engine')
  local asked = 0
  local request = client.request
  local uri = vim.uri_from_bufnr(buf)
  client.request = function(self, method, params, ...)
    -- (Neovim 0.12-dev's own engine also asks for other buffers on any InsertEnter: not counted)
    if method == 'textDocument/inlineCompletion' and params.textDocument.uri == uri then
      asked = asked + 1
    end
    return request(self, method, params, ...)
  end
  type_keys('GA +')
  wait(function() return vim.endswith(api.nvim_get_current_line(), ' +') end, 'the typed text')
  local typed = vim.uv.now()
  wait(function() return vim.uv.now() - typed > 600 end, 'time') -- an automatic trigger would have asked
  leave_insert()
  inline.complete()
  check(note_matching('no inline completion in buffers over max_file_size'), 'no message')
  client.request = request
  eq(0, asked, 'inlineCompletion requests')
  vim.cmd('bwipeout!')
  check(ready(), 'the index is not ready after the big file')
end)

test('reconnects-after-the-server-is-killed', function()
  session()
  local old = vim.lsp.get_clients({ name = 'ragls', bufnr = calc })[1]
  local servers = wait(function() -- (the other tests' servers are gone)
    local found = vim.tbl_filter(function(child)
      return table.concat(vim.fn.readfile('/proc/' .. child .. '/cmdline', 'b'), ' '):find('serve', 1, true) ~= nil
    end, api.nvim_get_proc_children(vim.fn.getpid()))
    return #found == 1 and found
  end, 'one ragls serve process', 30)
  vim.uv.kill(servers[1], 'sigkill')
  wait(function()
    local new = vim.lsp.get_clients({ name = 'ragls', bufnr = calc })[1]
    return new and new.id ~= old.id and new.initialized
  end, 'a new server')
  check(note_matching('exited %(signal 9%); restarting it'), 'no restart message')
  session()
  reset_calc()
  insert_at_end()
  inline.complete()
  eq(' b', wait(function() return ghost(inline.ns) end, 'a completion from the new server'), 'ghost')
  type_keys('<Tab>')
  wait(function() return lines(calc)[2] == '    return a + b' end, 'the accepted completion')
  leave_insert()
end)

local function main()
  local failed = 0
  local only = os.getenv('RAGLS_TESTS')
  for _, t in ipairs(tests) do
    local picked = not only
    for pattern in (only or ''):gmatch('%S+') do
      picked = picked or t.name:find(pattern) ~= nil
    end
    if picked then
      local started = vim.uv.now()
      local ok, err = xpcall(t.fn, debug.traceback)
      io.stdout:write(('%s %s (%.1f s)\n'):format(ok and 'ok' or 'FAIL', t.name, (vim.uv.now() - started) / 1000))
      if not ok then
        failed = failed + 1
        io.stdout:write(err, '\nrecent messages:\n  ', table.concat(vim.list_slice(notes, #notes - 5), '\n  '), '\n')
        pcall(leave_insert)
      end
    end
  end
  vim.cmd((failed == 0 and 'qall!') or 'cquit! 1')
end

coroutine.wrap(main)()
