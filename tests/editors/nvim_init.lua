-- A normal Neovim set-up, the one tests/editors/test_neovim_interactive.py types into: syntax and
-- treesitter highlighting, swap, backup and undo files, an auto-save when typing pauses, a second
-- language server (pylsp) on the same buffer with its completion popup, and ragls with the
-- defaults. Paths come from the environment the test sets.
local env = vim.env

vim.cmd('syntax on')
vim.cmd('filetype plugin indent on')
vim.o.swapfile = true
vim.o.backup = true -- 'backupdir' is ".,~/.local/state/nvim/backup//": x~ beside the file
vim.o.undofile = true
vim.o.updatetime = 300 -- what LSP guides suggest (diagnostics, CursorHold), instead of 4 s
vim.o.expandtab = true
vim.o.shiftwidth = 4
vim.o.laststatus = 2
vim.o.statusline = '%f %m%=%{v:lua.vim.lsp.status()} %l,%c'
vim.api.nvim_create_autocmd('LspProgress', { command = 'redrawstatus' }) -- as :help lsp-progress shows

-- Auto-save when typing pauses, as vim-auto-save's documented CursorHoldI / InsertLeave events do.
vim.api.nvim_create_autocmd({ 'CursorHoldI', 'InsertLeave' }, { command = 'silent! update' })

-- Treesitter highlighting for Python: the parser from a PyPI wheel, the query from another.
if env.NVIM_TEST_TS_PARSER then
  vim.treesitter.language.add('python', { path = env.NVIM_TEST_TS_PARSER })
  local query = io.open(env.NVIM_TEST_TS_QUERY):read('*a')
  vim.treesitter.query.set('python', 'highlights', query)
  vim.api.nvim_create_autocmd('FileType', {
    pattern = 'python',
    callback = function(args)
      vim.treesitter.start(args.buf, 'python')
    end,
  })
end

-- A second language server on the same buffers, with completion as Neovim's docs suggest.
vim.lsp.config('pylsp', { cmd = { 'pylsp' }, filetypes = { 'python' }, root_markers = { '.git' } })
vim.lsp.enable('pylsp')
vim.api.nvim_create_autocmd('LspAttach', {
  callback = function(args)
    local client = vim.lsp.get_client_by_id(args.data.client_id)
    if client and client.name == 'pylsp' then
      vim.lsp.completion.enable(true, client.id, args.buf, { autotrigger = true })
    end
  end,
})

vim.opt.runtimepath:prepend(env.NVIM_TEST_RAGLS_PLUGIN)
require('ragls').setup({
  -- --verbose: the server logs each completion's own time, which Neovim writes to its lsp.log
  cmd = env.NVIM_TEST_RAGLS_VERBOSE and { 'ragls', 'serve', '--verbose' } or nil,
  inline = { engine = env.NVIM_TEST_RAGLS_ENGINE or 'auto' },
})
