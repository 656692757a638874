--- The chat buffer: answers to :RaglsAsk and recipe runs stream into it (ragls/chatDelta), and
--- their citations are lines that <CR> opens.
local ragls = require('ragls')

local M = {}

local ns = vim.api.nvim_create_namespace('ragls.chat') -- where each answer streams
local ns_links = vim.api.nvim_create_namespace('ragls.chat.links') -- citation lines
M.ns_links = ns_links

---@class ragls.Turn
---@field client_id integer
---@field buf integer the chat buffer
---@field mark integer extmark (in `ns`) where the next text goes

local turns = {} ---@type table<string, ragls.Turn> "chatId#turn" -> answer being streamed
local early = {} ---@type table<string, table[]> messages that arrived before the request's answer
local links = {} ---@type table<integer, table<integer, table>> chat buffer -> link extmark -> location
local buffers = {} ---@type table<string, integer> project root -> its chat buffer

local function key(chat_id, turn)
  return ('%s#%s'):format(chat_id, turn)
end

--- The chat buffer of `root`, made on first use.
local function chat_buffer(root)
  local buf = buffers[root]
  if buf and vim.api.nvim_buf_is_valid(buf) then
    return buf
  end
  buf = vim.api.nvim_create_buf(true, true)
  vim.api.nvim_buf_set_name(buf, 'ragls://chat/' .. vim.fs.basename(root))
  vim.bo[buf].filetype = 'ragls-chat'
  vim.bo[buf].syntax = 'markdown'
  vim.bo[buf].modifiable = false
  vim.b[buf].ragls_root = root
  links[buf] = {}
  local function map(lhs, fn, desc)
    vim.keymap.set('n', lhs, fn, { buffer = buf, desc = 'ragls: ' .. desc })
  end
  map('<CR>', M.follow, 'open the citation under the cursor')
  map('a', function()
    vim.ui.input({ prompt = 'Ask ragls: ' }, function(q)
      if q then
        M.ask(q)
      end
    end)
  end, 'ask a follow-up question')
  map('<C-c>', M.cancel, 'stop the answer')
  map('q', '<Cmd>close<CR>', 'close the chat window')
  buffers[root] = buf
  return buf
end

--- Change the chat buffer `buf` (read-only to the user); windows at its end follow the text.
local function edit(buf, fn)
  local last = vim.api.nvim_buf_line_count(buf)
  local followers = vim.tbl_filter(function(win)
    return vim.api.nvim_win_get_buf(win) == buf and vim.api.nvim_win_get_cursor(win)[1] == last
  end, vim.api.nvim_list_wins())
  vim.bo[buf].modifiable = true
  fn()
  vim.bo[buf].modifiable = false
  for _, win in ipairs(followers) do
    vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(buf), 0 })
  end
end

--- Start a section titled `heading` in the chat buffer of `client`'s project.
---@return ragls.Turn
local function open_turn(client, heading, focus)
  local buf = chat_buffer(client.root_dir)
  local turn = { client_id = client.id, buf = buf }
  edit(buf, function()
    local empty = vim.api.nvim_buf_line_count(buf) == 1 and vim.api.nvim_buf_get_lines(buf, 0, 1, true)[1] == ''
    local lines = empty and { heading, '' } or { '', heading, '' }
    vim.api.nvim_buf_set_lines(buf, empty and 0 or -1, -1, true, lines)
    turn.mark = vim.api.nvim_buf_set_extmark(buf, ns, vim.api.nvim_buf_line_count(buf) - 1, 0, {
      virt_text = { { '…', 'Comment' } }, -- until the first words arrive
      virt_text_pos = 'inline',
    })
  end)
  local win = vim.fn.bufwinid(buf)
  if win == -1 then
    win = vim.api.nvim_open_win(buf, focus, { split = 'below', win = -1 })
    vim.wo[win].linebreak = true
    vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(buf), 0 }) -- and follow the answer
  elseif focus then
    vim.api.nvim_set_current_win(win)
  end
  return turn
end

--- Insert `text` where `turn` streams; returns the row the text started on.
local function insert(turn, text)
  local row, col = unpack(vim.api.nvim_buf_get_extmark_by_id(turn.buf, ns, turn.mark, {}))
  edit(turn.buf, function()
    vim.api.nvim_buf_set_text(turn.buf, row, col, row, col, vim.split(text, '\n', { plain = true }))
  end)
  return row
end

--- `title`, then one line per location, each a link <CR> opens.
local function link_lines(title, locations, out, at, scores)
  table.insert(out, title .. ':')
  for _, loc in ipairs(locations) do
    local line = ('  %s:%d-%d'):format(loc.path, loc.startLine, loc.endLine)
    if scores then
      line = line .. ('  %s  %.3f'):format(loc.symbol or '', loc.score or 0)
    end
    table.insert(out, line)
    at[#out] = loc
  end
end

--- Finish `turn` with the final message: citations, sources, notes, errors.
local function finish(turn, msg)
  local out, at = { '', '' }, {} -- a blank line after the answer
  local search = msg.route == 'search'
  local citations, sources = msg.citations or {}, msg.sources or {}
  if search then
    link_lines('Results', msg.results or {}, out, at, true)
  end
  if #citations > 0 then
    link_lines('Citations', citations, out, at)
  elseif #sources > 0 and not search then
    link_lines('Sources (nothing was cited)', sources, out, at)
  end
  if msg.targetUri then
    table.insert(out, ('Code for %s%s'):format(msg.target_path, msg.applied == true and ' (added and opened)' or ''))
  end
  if msg.code and msg.output == 'edit' then
    table.insert(out, msg.applied == true and '(applied to the buffer)'
      or '(not applied: the buffer changed, or the edit was refused)')
  end
  for _, note in ipairs(msg.notes or {}) do
    table.insert(out, 'Note: ' .. note)
  end
  if msg.cancelled == true then
    table.insert(out, '(cancelled)')
  end
  if type(msg.error) == 'string' then
    table.insert(out, 'Error: ' .. msg.error)
  elseif not search and (msg.answer or '') == '' then
    table.insert(out, '(no answer)')
  end
  local row = insert(turn, table.concat(out, '\n'))
  vim.api.nvim_buf_del_extmark(turn.buf, ns, turn.mark)
  for i, loc in pairs(at) do
    links[turn.buf][vim.api.nvim_buf_set_extmark(turn.buf, ns_links, row + i - 1, 0, {})] = loc
  end
end

--- Stream a piece of an answer, or finish it; kept for later if its request has no answer yet.
local function deliver(msg)
  local k = key(msg.chatId, msg.turn)
  local turn = turns[k]
  if not turn then
    early[k] = early[k] or {}
    table.insert(early[k], msg)
  elseif not vim.api.nvim_buf_is_valid(turn.buf) then
    turns[k] = nil
  elseif msg.done then
    turns[k] = nil
    finish(turn, msg)
  else
    insert(turn, msg.delta)
  end
end

--- Handler of the ragls/chatDelta notification.
function M.on_delta(_, msg)
  deliver(msg)
end

--- Stream chat `chat_id`'s answer `n` into `turn`, replaying what arrived before we knew its id.
local function register(turn, chat_id, n)
  local k = key(chat_id, n)
  turns[k] = turn
  local pending = early[k] or {}
  early[k] = nil
  for _, msg in ipairs(pending) do
    deliver(msg)
  end
end

local function fail(turn, why)
  finish(turn, { error = why })
end

--- End the answers client `client_id` was streaming, saying `why`.
function M.forget(client_id, why)
  for k, turn in pairs(turns) do
    if turn.client_id == client_id and vim.api.nvim_buf_is_valid(turn.buf) then
      turns[k] = nil
      fail(turn, why .. '; the answer is lost')
    end
  end
end

--- Ask about the project; the answer streams into the chat buffer, which is returned. In the chat
--- buffer the question follows up on its conversation. `range`: {first, last} lines it is about.
---@param question string
---@param range? integer[]
function M.ask(question, range)
  if vim.trim(question) == '' then
    return ragls.notify('the question is empty', vim.log.levels.ERROR)
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local client, why = ragls.client(bufnr)
  if not client then
    return ragls.notify(why, vim.log.levels.ERROR)
  end
  local params = { question = question }
  if vim.b[bufnr].ragls_root and vim.b[bufnr].ragls_chat_client == client.id then
    params.chatId = vim.b[bufnr].ragls_chat_id -- a follow-up (unless the server restarted since)
  elseif vim.lsp.buf_is_attached(bufnr, client.id) then
    params.uri = vim.uri_from_bufnr(bufnr)
    if range then
      params.range = { start = { line = range[1] - 1, character = 0 }, ['end'] = { line = range[2], character = 0 } }
    end
  end
  local turn = open_turn(client, 'Q: ' .. question, true)
  ragls.call(client, 'request', 'ragls/chat', params, function(err, started)
    if err then
      return fail(turn, err.message)
    end
    vim.b[turn.buf].ragls_chat_id = started.chatId
    vim.b[turn.buf].ragls_chat_client = client.id
    register(turn, started.chatId, started.turn)
  end)
  return turn.buf
end

--- Stop the answer being streamed in this chat buffer.
function M.cancel()
  local client = ragls.client()
  local chat_id = vim.b.ragls_chat_id
  if client and chat_id then
    ragls.call(client, 'request', 'ragls/cancelChat', { chatId = chat_id }, function() end)
  end
end

--- Run a recipe (`argument`: {recipe, uri, range?, question?}) on `client`, streaming its answer.
function M.run_recipe(client, argument)
  local name = vim.fs.basename(vim.uri_to_fname(argument.uri))
  local turn = open_turn(client, ('Recipe %s on %s'):format(argument.recipe, name), false)
  ragls.call(client, 'request', 'ragls/runRecipe', argument, function(err, started)
    if err then
      return fail(turn, err.message)
    end
    register(turn, started.chatId, 1)
  end)
  return turn.buf
end

--- The `ragls.runRecipe` command of code actions: run it without blocking Neovim.
function M.run_recipe_command(command, ctx)
  M.run_recipe(vim.lsp.get_client_by_id(ctx.client_id), command.arguments[1])
end

--- Open the citation under the cursor in the window the chat was opened from.
function M.follow()
  local buf = vim.api.nvim_get_current_buf()
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  local mark = vim.api.nvim_buf_get_extmarks(buf, ns_links, { row, 0 }, { row, -1 }, {})[1]
  local loc = mark and links[buf][mark[1]]
  if not loc then
    return ragls.notify('no citation on this line')
  end
  local client = ragls.client()
  vim.cmd('wincmd p')
  if vim.api.nvim_get_current_buf() == buf then
    vim.cmd('aboveleft split')
  end
  vim.lsp.util.show_document({ uri = loc.uri, range = loc.range }, client and client.offset_encoding or 'utf-8',
    { focus = true })
end

return M
