--- ragls for Neovim: starts `ragls serve` per project and adds what Neovim lacks (ghost text on
--- Neovim < 0.12, a streaming chat buffer, search into quickfix, index status).
local M = {}

--- Defaults; `setup()` merges the user's options over them.
M.config = {
  cmd = { 'ragls', 'serve' },
  -- Sent as initializationOptions and as the `ragls` settings section (the config file's shape),
  -- e.g. { privacy = { mode = 'local' }, server = { debounce_ms = 75 } }.
  settings = {},
  root_markers = { '.git', 'pyproject.toml', 'package.json', 'go.mod', 'Cargo.toml' },
  filetypes = {
    'python', 'javascript', 'javascriptreact', 'typescript', 'typescriptreact', 'go', 'rust',
    'c', 'cpp', 'java', 'ruby', 'sh', 'bash', 'lua', 'markdown',
  },
  -- Bigger buffers get no inline completion (bytes).
  max_file_size = 2 * 1024 * 1024,
  inline = {
    -- 'auto': Neovim's vim.lsp.inline_completion where it exists (0.12+), else ragls' own
    -- extmarks; 'builtin' or 'extmark' force one; false turns inline completion off.
    engine = 'auto',
    delay_ms = 150, -- after typing stops (the extmark engine; the built-in one waits 200 ms)
  },
  keymaps = { accept = '<Tab>', dismiss = '<C-]>', next = '<M-]>', prev = '<M-[>', trigger = '<M-\\>' },
  search_top_k = 20,
}

local group = vim.api.nvim_create_augroup('ragls', { clear = true })
local warned = {} ---@type table<string, true> failed commands already reported this session
local restarts = {} ---@type table<string, number[]> root -> times of automatic restarts
local stderr = {} ---@type table<string, string[]> program -> its last stderr lines

--- Neovim writes a server's stderr to its log and offers no other hook; keep the last lines of
--- ours so that a server which dies while starting can be explained in the message itself.
local log = require('vim.lsp.log')
local log_error = log.error
log.error = function(...)
  local what, program, stream, chunk = ...
  if what == 'rpc' and stream == 'stderr' and type(chunk) == 'string' and stderr[program] then
    vim.list_extend(stderr[program], vim.split(vim.trim(chunk), '\n', { trimempty = true }))
    while #stderr[program] > 5 do
      table.remove(stderr[program], 1)
    end
  end
  return log_error(...)
end

--- Call a client method: Neovim 0.11 made them take self (`client:request`), 0.10 does not.
function M.call(client, method, ...)
  if vim.fn.has('nvim-0.11') == 1 then
    return client[method](client, ...)
  end
  return client[method](...)
end

local function notify(msg, level)
  vim.notify('ragls: ' .. msg, level or vim.log.levels.INFO)
end
M.notify = notify

--- Whether a buffer name is a URL (scp://, fugitive://, oil://...) rather than a local file.
local function remote(name)
  return name:match('^%a[%w+.-]*://') ~= nil
end

--- Why ragls must not serve buffer `bufnr`, or nil: remote and non-file buffers are skipped.
---@param bufnr integer
---@return string?
function M.skip_reason(bufnr)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if vim.bo[bufnr].buftype ~= '' then
    return 'not a file buffer'
  elseif name == '' then
    return 'the buffer has no file name'
  elseif remote(name) then
    return ('%s is not a local file (ragls serves local files only)'):format(name)
  end
end

--- Whether buffer `bufnr` is too big for inline completion.
function M.too_big(bufnr)
  return vim.api.nvim_buf_get_offset(bufnr, vim.api.nvim_buf_line_count(bufnr)) > M.config.max_file_size
end

local function command_line()
  return table.concat(M.config.cmd, ' ')
end

--- Say once why the server command cannot run; true if it can.
local function check_command()
  local program = M.config.cmd[1]
  if vim.fn.executable(program) == 1 then
    return true
  end
  if not warned[command_line()] then
    warned[command_line()] = true
    notify(
      ("cannot start `%s`: `%s` is not an executable on PATH (run `make install` in the ragls repository"
        .. " and put its .venv/bin on PATH, or set cmd in require('ragls').setup{})"):format(command_line(), program),
      vim.log.levels.ERROR
    )
  end
  return false
end

--- Restart the server of `root` for `buffers` after it died, unless it keeps dying.
local function restart(root, buffers)
  local now = vim.uv.now()
  local recent = vim.tbl_filter(function(t)
    return now - t < 60000
  end, restarts[root] or {})
  if #recent >= 3 then
    notify(('`%s` died 3 times in a minute; not restarting it (:RaglsStart tries again)'):format(command_line()),
      vim.log.levels.ERROR)
    return
  end
  table.insert(recent, now)
  restarts[root] = recent
  for _, bufnr in ipairs(buffers) do
    if vim.api.nvim_buf_is_loaded(bufnr) then
      M.start(bufnr)
    end
  end
end

--- What to do when the server process ends: explain a failed start, restart after a crash.
--- Called as the process ends, before Neovim forgets the client: read it now, act later.
local function on_exit(code, signal, client_id)
  local client = vim.lsp.get_client_by_id(client_id)
  local started = client and client.initialized
  local root = client and client.root_dir
  local buffers = client and vim.tbl_keys(client.attached_buffers) or {}
  local program, line = M.config.cmd[1], command_line()
  -- The rest of its stderr may still be on the way: look a moment later.
  vim.defer_fn(function()
    require('ragls.chat').forget(client_id, 'the server exited')
    local how = signal ~= 0 and ('signal %d'):format(signal) or ('exit %d'):format(code)
    if not started then
      local last = stderr[program] or {}
      notify(('`%s` exited (%s) before it started%s\n(see :LspLog; check cmd in require("ragls").setup{})')
        :format(line, how, #last > 0 and (':\n  ' .. table.concat(last, '\n  ')) or ''),
        vim.log.levels.ERROR)
    elseif code ~= 0 or (signal ~= 0 and signal ~= 15) then
      notify(('`%s` exited (%s); restarting it'):format(line, how), vim.log.levels.WARN)
      restart(root, buffers)
    end
  end, 300)
end

local held = {} ---@type table[] window/showMessage calls that arrived while the user was typing

--- window/showMessage: shown by Neovim's handler, but not while the user types. A message that
--- does not fit beside '-- INSERT --' opens the hit-enter prompt, which eats the next keystrokes;
--- and the server says things exactly then ("loading the completion model" on the first keys).
--- Messages that arrive in insert mode are held until insert mode ends, none is dropped.
local function show_message(err, params, ctx)
  local show = vim.lsp.handlers['window/showMessage']
  if not vim.fn.mode():find('^[iR]') then
    return show(err, params, ctx)
  end
  table.insert(held, { err, params, ctx })
  if #held == 1 then
    vim.api.nvim_create_autocmd('InsertLeave', {
      once = true, -- in no group: setup() clearing its autocommands must not strand the messages
      callback = function()
        local messages = held
        held = {}
        for _, call in ipairs(messages) do
          show(unpack(call))
        end
      end,
    })
  end
end

--- The client capabilities: Neovim's, plus inline completion (Neovim < 0.12 lacks it) and the
--- streamed chat messages this plugin shows.
local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion or { dynamicRegistration = false }
  caps.experimental = { ragls = { chatDelta = true } }
  return caps
end

--- Start (or reuse) the ragls server for buffer `bufnr`'s project and attach the buffer.
---@param bufnr integer?
---@return integer? client_id
---@return string? why_not
function M.start(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  local reason = M.skip_reason(bufnr)
  if reason then
    return nil, reason
  end
  if not check_command() then
    return nil, 'the command is missing'
  end
  local path = vim.api.nvim_buf_get_name(bufnr)
  stderr[M.config.cmd[1]] = {}
  return vim.lsp.start({
    name = 'ragls',
    cmd = M.config.cmd,
    root_dir = vim.fs.root(bufnr, M.config.root_markers) or vim.fs.dirname(path),
    init_options = M.config.settings,
    settings = { ragls = M.config.settings },
    capabilities = capabilities(),
    handlers = { ['ragls/chatDelta'] = require('ragls.chat').on_delta, ['window/showMessage'] = show_message },
    commands = { ['ragls.runRecipe'] = require('ragls.chat').run_recipe_command },
    on_exit = on_exit,
  }, { bufnr = bufnr })
end

--- The ragls client serving buffer `bufnr` (or the project of the current directory), or nil and
--- a message saying why there is none.
---@param bufnr integer?
---@return vim.lsp.Client?, string?
function M.client(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if vim.bo[bufnr].buftype == '' and remote(vim.api.nvim_buf_get_name(bufnr)) then
    return nil, M.skip_reason(bufnr) -- nothing there ragls could know about
  end
  local attached = vim.lsp.get_clients({ name = 'ragls', bufnr = bufnr })[1]
  if attached then
    return attached
  end
  local dir = vim.b[bufnr].ragls_root or vim.fn.getcwd()
  for _, client in ipairs(vim.lsp.get_clients({ name = 'ragls' })) do
    if client.root_dir and (dir == client.root_dir or vim.startswith(dir, client.root_dir .. '/')) then
      return client
    end
  end
  return nil, ('no ragls server for %s; open a file of the project (or :RaglsStart)'):format(dir)
end

--- The state of each workspace's index, one line each (nil and the reason if unknown).
---@return string?, string?
function M.status()
  local client, why = M.client()
  if not client then
    return nil, why
  end
  local answer, err = M.call(client, 'request_sync', 'ragls/indexStatus', vim.empty_dict(), 10000)
  if not answer or answer.err then
    return nil, 'ragls/indexStatus failed: ' .. vim.inspect(err or answer.err)
  end
  local lines = {}
  for _, ws in ipairs(answer.result.workspaces) do
    local p = ws.progress
    table.insert(lines, ('ragls %s: %s, %d files, %d chunks, %d embedded%s%s'):format(
      vim.fn.fnamemodify(ws.root, ':~'), ws.state, ws.files, ws.chunks, ws.embedded,
      type(p) == 'table' and (' (%s %d/%d, %d%%)'):format(p.what, p.done, p.total, p.percentage) or '',
      type(ws.error) == 'string' and (' error: ' .. ws.error) or ''))
  end
  return #lines > 0 and table.concat(lines, '\n') or 'ragls: no workspace folder is open'
end

--- Search the project; the results go to the quickfix list, which is opened.
---@param query string
function M.search(query)
  local client, why = M.client()
  if not client then
    return notify(why, vim.log.levels.ERROR)
  end
  M.call(client, 'request', 'ragls/search', { query = query, topK = M.config.search_top_k }, function(err, result)
    if err then
      return notify('search failed: ' .. err.message, vim.log.levels.ERROR)
    end
    local items = {}
    for _, hit in ipairs(result.results) do
      table.insert(items, {
        filename = vim.uri_to_fname(hit.uri),
        lnum = hit.startLine,
        end_lnum = hit.endLine,
        text = ('%s  %.3f'):format(hit.symbol or hit.path, hit.score or 0),
      })
    end
    if #items == 0 then
      return notify(('nothing found for %q'):format(query))
    end
    vim.fn.setqflist({}, ' ', { title = 'ragls search: ' .. query, items = items })
    vim.cmd('botright copen')
  end)
end

--- Pick a model already on this machine (ragls/models: GGUF files, loopback servers) and a role
--- for it; the server writes it into the user config and uses it at once (ragls/useModel).
function M.models()
  local client, why = M.client()
  if not client then
    return notify(why, vim.log.levels.ERROR)
  end
  M.call(client, 'request', 'ragls/models', vim.empty_dict(), function(err, found)
    if err then
      return notify('ragls/models failed: ' .. err.message, vim.log.levels.ERROR)
    end
    if #found.models == 0 then
      return notify('no models found (models.search_paths names folders of GGUF files)', vim.log.levels.WARN)
    end
    local function describe(m) -- facts the scan did not learn are JSON null (vim.NIL): left out
      local fim = type(m.fim) == 'string' and ('FIM ' .. m.fim) or nil
      local facts = vim.tbl_filter(function(x) return type(x) == 'string' end,
        { m.family, m.size, m.quantisation, fim })
      return ('%s  [%s] %s'):format(m.name, m.source, table.concat(facts, ' '))
    end
    vim.ui.select(found.models, { prompt = 'ragls model', format_item = describe }, function(model)
      if not model then
        return
      end
      vim.ui.select({ 'chat', 'completion', 'embedding' }, { prompt = 'use ' .. model.name .. ' for' }, function(role)
        if not role then
          return
        end
        local params = { name = type(model.path) == 'string' and model.path or model.name, role = role,
          from = model.source }
        M.call(client, 'request', 'ragls/useModel', params, function(use_err, used)
          if use_err then
            return notify('not used: ' .. use_err.message, vim.log.levels.ERROR)
          end
          notify(('models.%s = %s (written to %s)'):format(role, model.name, used.config))
        end)
      end)
    end)
  end)
end

--- Apply the settings to running servers (workspace/didChangeConfiguration, applied live).
function M.send_settings()
  for _, client in ipairs(vim.lsp.get_clients({ name = 'ragls' })) do
    client.settings = { ragls = M.config.settings }
    M.call(client, 'notify', 'workspace/didChangeConfiguration', { settings = { ragls = M.config.settings } })
  end
end

---@param opts table? overrides of M.config (see README.md)
function M.setup(opts)
  local settings = M.config.settings
  M.config = vim.tbl_deep_extend('force', M.config, opts or {})
  vim.api.nvim_clear_autocmds({ group = group })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = M.config.filetypes,
    callback = function(args)
      M.start(args.buf)
    end,
  })
  vim.api.nvim_create_autocmd('LspAttach', {
    group = group,
    callback = function(args)
      local client = vim.lsp.get_client_by_id(args.data.client_id)
      if client and client.name == 'ragls' then
        require('ragls.inline').attach(args.buf)
      end
    end,
  })
  if not vim.deep_equal(settings, M.config.settings) then
    M.send_settings()
  end
  -- Buffers opened before setup() (a lazily loaded plugin) are served too.
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(M.config.filetypes, vim.bo[bufnr].filetype)
        and #vim.lsp.get_clients({ name = 'ragls', bufnr = bufnr }) == 0 then
      M.start(bufnr)
    end
  end
end

return M
