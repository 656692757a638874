--- Inline completion as ghost text. Automatic completions come from Neovim's own
--- vim.lsp.inline_completion where it exists (0.12+), else from the extmark engine below; the
--- extmark engine also serves on-demand requests everywhere (the built-in one cannot be invoked).
local ragls = require('ragls')

local M = {}

local ns = vim.api.nvim_create_namespace('ragls.inline')
M.ns = ns
vim.api.nvim_set_hl(0, 'RaglsGhost', { link = 'Comment', default = true })

---@class ragls.InlineState
---@field ticket integer counts requests: a late answer to an older one is dropped
---@field timer? uv.uv_timer_t the pending automatic trigger
---@field pending? { client: vim.lsp.Client, id: integer } the request in flight
---@field edits integer changes to the text, counted by on_lines: b:changedtick is no measure of
---  typing, it also moves when the buffer is written (an auto-save) or 'modified' is reset
---@field handled integer `edits` when TextChangedI last acted
---@field counting? true the buffer's lines are watched
---@field shown? { client: vim.lsp.Client, items: table[], index: integer, row: integer, col: integer, edits: integer }

---@type table<integer, ragls.InlineState>
local states = {}

local function state(bufnr)
  states[bufnr] = states[bufnr] or { ticket = 0, edits = 0, handled = 0 }
  return states[bufnr]
end

--- The engine buffer `bufnr` uses for automatic completions, or nil (off, or too big).
local function engine(bufnr)
  local choice = ragls.config.inline.engine
  if not choice or ragls.too_big(bufnr) then
    return nil
  end
  if choice ~= 'extmark' and vim.lsp.inline_completion then
    return 'builtin'
  end
  return 'extmark'
end

--- The byte column of LSP position `pos` in buffer `bufnr`.
local function byte_col(bufnr, pos, encoding)
  local line = vim.api.nvim_buf_get_lines(bufnr, pos.line, pos.line + 1, false)[1] or ''
  if encoding == 'utf-8' then
    return math.min(pos.character, #line)
  elseif vim.fn.has('nvim-0.11') == 1 then
    return vim.str_byteindex(line, encoding, pos.character, false)
  end
  return vim.str_byteindex(line, pos.character, encoding == 'utf-16')
end

--- Where item `item` replaces text: start and end as 0-based {row, byte col}.
local function span(bufnr, shown, item)
  if not item.range then
    return { shown.row, shown.col }, { shown.row, shown.col }
  end
  local enc = shown.client.offset_encoding
  local s, e = item.range.start, item.range['end']
  return { s.line, byte_col(bufnr, s, enc) }, { e.line, byte_col(bufnr, e, enc) }
end

local function item_text(item)
  return type(item.insertText) == 'string' and item.insertText or item.insertText.value
end

local function clear(bufnr)
  local s = state(bufnr)
  s.shown = nil
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  end
end

--- Draw the current item as ghost text at the cursor: what the user already typed of it is skipped.
local function show(bufnr)
  vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  local shown = state(bufnr).shown
  local item = shown.items[shown.index]
  local text = item_text(item)
  local start = span(bufnr, shown, item)
  local typed = start[1] == shown.row
      and vim.api.nvim_buf_get_text(bufnr, shown.row, start[2], shown.row, shown.col, {})[1]
    or ''
  local ghost = vim.startswith(text, typed) and text:sub(#typed + 1) or text
  if ghost == '' then
    return clear(bufnr)
  end
  local lines = vim.split(ghost, '\n', { plain = true })
  local virt_lines = {}
  for i = 2, #lines do
    table.insert(virt_lines, { { lines[i], 'RaglsGhost' } })
  end
  vim.api.nvim_buf_set_extmark(bufnr, ns, shown.row, shown.col, {
    virt_text = { { lines[1], 'RaglsGhost' } },
    virt_text_pos = 'inline',
    virt_lines = #virt_lines > 0 and virt_lines or nil,
    hl_mode = 'combine',
  })
end

local function cancel_pending(bufnr)
  local s = state(bufnr)
  s.ticket = s.ticket + 1
  if s.pending then
    ragls.call(s.pending.client, 'cancel_request', s.pending.id)
    s.pending = nil
  end
end

--- Ask for a completion at the cursor (`kind`: 1 invoked, 2 automatic) and show it as ghost text.
local function request(bufnr, kind)
  local client = vim.lsp.get_clients({ name = 'ragls', bufnr = bufnr })[1]
  if not client then
    return kind == 1 and ragls.notify('no ragls server for this buffer', vim.log.levels.ERROR)
  end
  cancel_pending(bufnr)
  clear(bufnr)
  local s = state(bufnr)
  local ticket = s.ticket
  local win = vim.api.nvim_get_current_win()
  local row, col = unpack(vim.api.nvim_win_get_cursor(win))
  local edits = s.edits
  local params = vim.lsp.util.make_position_params(win, client.offset_encoding)
  params.context = { triggerKind = kind }
  local ok, id = ragls.call(client, 'request', 'textDocument/inlineCompletion', params, function(err, result)
    if ticket ~= s.ticket then
      return
    end
    s.pending = nil
    if err then
      return kind == 1 and err.code ~= -32800 and ragls.notify('no completion: ' .. err.message)
    end
    local cursor = vim.api.nvim_win_get_cursor(0)
    local items = result and (result.items or result) or {}
    if vim.api.nvim_get_current_buf() ~= bufnr or cursor[1] ~= row or cursor[2] ~= col
        or s.edits ~= edits or #items == 0 then
      return
    end
    s.shown = { client = client, items = items, index = 1, row = row - 1, col = col, edits = edits }
    show(bufnr)
  end, bufnr)
  s.pending = ok and { client = client, id = id } or nil
end

--- Ask for a completion now (works with either engine).
function M.complete(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if ragls.too_big(bufnr) then
    return ragls.notify(('no inline completion in buffers over max_file_size (%d bytes)')
      :format(ragls.config.max_file_size), vim.log.levels.WARN)
  end
  request(bufnr, 1)
end

--- Whether ghost text from the extmark engine is on show in buffer `bufnr`.
function M.visible(bufnr)
  return state(bufnr or vim.api.nvim_get_current_buf()).shown ~= nil
end

--- Insert the completion on show; false if there is none.
function M.accept(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local shown = state(bufnr).shown
  if not shown then
    return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.get({ bufnr = bufnr })
  end
  local item = shown.items[shown.index]
  local start, finish = span(bufnr, shown, item)
  local lines = vim.split(item_text(item), '\n', { plain = true })
  clear(bufnr)
  vim.api.nvim_buf_set_text(bufnr, start[1], start[2], finish[1], finish[2], lines)
  vim.api.nvim_win_set_cursor(0, { start[1] + #lines, (#lines == 1 and start[2] or 0) + #lines[#lines] })
  return true
end

--- Hide the completion and stop one being generated.
function M.dismiss(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local s = state(bufnr)
  if s.timer then
    s.timer:stop()
  end
  cancel_pending(bufnr)
  clear(bufnr)
  -- The built-in engine has no dismiss: turning it off and on drops what it shows.
  if engine(bufnr) == 'builtin' and vim.lsp.inline_completion.is_enabled({ bufnr = bufnr }) then
    vim.lsp.inline_completion.enable(false, { bufnr = bufnr })
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  end
end

--- Show the next (`count` 1) or previous (-1) candidate.
function M.select(count, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local shown = state(bufnr).shown
  if shown then
    shown.index = (shown.index - 1 + count) % #shown.items + 1
    show(bufnr)
  elseif vim.lsp.inline_completion then
    vim.lsp.inline_completion.select({ bufnr = bufnr, count = count })
  end
end

--- The automatic trigger of the extmark engine: typing stopped for `delay_ms`.
local function schedule(bufnr)
  local s = state(bufnr)
  s.timer = s.timer or vim.uv.new_timer()
  local edits, cursor = s.edits, vim.api.nvim_win_get_cursor(0)
  s.timer:start(ragls.config.inline.delay_ms, 0, vim.schedule_wrap(function()
    local now = vim.api.nvim_win_get_cursor(0)
    if vim.api.nvim_get_current_buf() == bufnr and s.edits == edits
        and now[1] == cursor[1] and now[2] == cursor[2] and vim.fn.mode() == 'i' and not ragls.too_big(bufnr) then
      request(bufnr, 2)
    end
  end))
end

--- Keys of buffer `bufnr` while in insert mode; each falls back to the key's usual meaning.
local function map_keys(bufnr)
  local function map(name, fn, desc)
    local lhs = ragls.config.keymaps[name]
    if lhs then
      vim.keymap.set('i', lhs, function()
        if not fn() then
          vim.api.nvim_feedkeys(vim.keycode(lhs), 'n', false)
        end
      end, { buffer = bufnr, desc = 'ragls: ' .. desc })
    end
  end
  map('accept', function() return M.accept(bufnr) end, 'accept the inline completion')
  map('dismiss', function()
    local had = M.visible(bufnr) or state(bufnr).pending ~= nil
    M.dismiss(bufnr)
    return had or engine(bufnr) == 'builtin'
  end, 'dismiss the inline completion')
  map('next', function() M.select(1, bufnr) return true end, 'next inline completion')
  map('prev', function() M.select(-1, bufnr) return true end, 'previous inline completion')
  map('trigger', function() M.complete(bufnr) return true end, 'ask for an inline completion now')
end

--- Count the edits of buffer `bufnr` (once, whatever the number of restarts): `state().edits`.
local function count_edits(bufnr)
  local s = state(bufnr)
  if s.counting then
    return
  end
  s.counting = true
  local function count()
    local now = states[bufnr]
    if now ~= s then
      return true -- the buffer was wiped out: detach
    end
    s.edits = s.edits + 1
  end
  vim.api.nvim_buf_attach(bufnr, false, {
    on_lines = count,
    on_reload = count,
    on_detach = function() -- unloaded: the next attach watches it again
      s.counting = nil
    end,
  })
end

--- Turn inline completion on in buffer `bufnr`, which ragls now serves (again, after a restart).
function M.attach(bufnr)
  local kind = engine(bufnr)
  count_edits(bufnr) -- on-demand requests need it too
  vim.b[bufnr].ragls_inline = kind or 'off'
  local augroup = vim.api.nvim_create_augroup('ragls.inline.' .. bufnr, { clear = true })
  if not kind then
    return
  end
  map_keys(bufnr)
  if kind == 'builtin' then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  end
  -- Ghost text of the extmark engine (automatic, or asked for on demand) lives until the user
  -- types or moves away. TextChangedI also fires when b:changedtick moved without an edit (the
  -- buffer was written): that is no typing.
  vim.api.nvim_create_autocmd('TextChangedI', {
    group = augroup,
    buffer = bufnr,
    callback = function()
      local s = state(bufnr)
      if s.edits == s.handled then
        return
      end
      s.handled = s.edits
      clear(bufnr)
      if kind == 'extmark' then
        schedule(bufnr)
      end
    end,
  })
  vim.api.nvim_create_autocmd('CursorMovedI', {
    group = augroup,
    buffer = bufnr,
    callback = function()
      local shown = state(bufnr).shown
      local row, col = unpack(vim.api.nvim_win_get_cursor(0))
      if shown and (row - 1 ~= shown.row or col ~= shown.col or state(bufnr).edits ~= shown.edits) then
        clear(bufnr)
      end
    end,
  })
  vim.api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
    group = augroup,
    buffer = bufnr,
    callback = function()
      cancel_pending(bufnr)
      clear(bufnr)
    end,
  })
  vim.api.nvim_create_autocmd('BufWipeout', {
    group = augroup,
    buffer = bufnr,
    callback = function()
      M.dismiss(bufnr)
      if states[bufnr].timer then
        states[bufnr].timer:close()
      end
      states[bufnr] = nil
    end,
  })
end

return M
