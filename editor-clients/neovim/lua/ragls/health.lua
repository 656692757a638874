--- :checkhealth ragls
local M = {}

function M.check()
  local health = vim.health
  local ragls = require('ragls')
  health.start('ragls')
  if vim.fn.has('nvim-0.10') == 1 then
    health.ok('Neovim ' .. tostring(vim.version()))
  else
    health.error('Neovim 0.10 or newer is needed')
  end
  local cmd = ragls.config.cmd
  if vim.fn.executable(cmd[1]) == 1 then
    local version = vim.system({ cmd[1], '--version' }, { text = true }):wait(10000)
    health.ok(('`%s` is %s (%s)'):format(cmd[1], vim.fn.exepath(cmd[1]), vim.trim(version.stdout or '')))
  else
    health.error(('`%s` is not an executable on PATH'):format(cmd[1]), {
      'run `make install` in the ragls repository and put its .venv/bin on PATH',
      "or set cmd in require('ragls').setup{ cmd = { '/path/to/ragls', 'serve' } }",
    })
  end
  if vim.lsp.inline_completion and ragls.config.inline.engine ~= 'extmark' then
    health.ok('inline completion: Neovim\'s vim.lsp.inline_completion')
  elseif ragls.config.inline.engine then
    health.ok('inline completion: the ragls extmark engine')
  else
    health.info('inline completion is off (inline.engine = false)')
  end
  local clients = vim.lsp.get_clients({ name = 'ragls' })
  if #clients == 0 then
    health.info('no ragls server is running (open a file of a project, or :RaglsStart)')
  end
  for _, client in ipairs(clients) do
    health.ok(('server %d serves %s (%d buffers)'):format(client.id, client.root_dir,
      #vim.tbl_keys(client.attached_buffers)))
  end
end

return M
