-- ragls user commands; servers start once require('ragls').setup{} has been called.
if vim.g.loaded_ragls then
  return
end
vim.g.loaded_ragls = true

local function command(name, fn, opts)
  vim.api.nvim_create_user_command(name, fn, opts)
end

command('RaglsAsk', function(args)
  require('ragls.chat').ask(args.args, args.range > 0 and { args.line1, args.line2 } or nil)
end, { nargs = '+', range = true, desc = 'ragls: ask about the project (the answer streams into a chat buffer)' })

command('RaglsSearch', function(args)
  require('ragls').search(args.args)
end, { nargs = '+', desc = 'ragls: search the project into the quickfix list' })

command('RaglsStatus', function()
  local text, why = require('ragls').status()
  vim.notify(text or ('ragls: ' .. why), text and vim.log.levels.INFO or vim.log.levels.ERROR)
end, { desc = 'ragls: show the state of the index' })

command('RaglsStart', function()
  local _, why = require('ragls').start(0)
  if why then
    require('ragls').notify('not started: ' .. why, vim.log.levels.WARN)
  end
end, { desc = 'ragls: start the server for this buffer, whatever its filetype' })

command('RaglsComplete', function()
  require('ragls.inline').complete()
end, { desc = 'ragls: ask for an inline completion at the cursor now' })

command('RaglsModels', function()
  require('ragls').models()
end, { desc = 'ragls: pick a model already on this machine and the role it serves' })

command('RaglsArena', function(args)
  require('ragls.arena').ask(args.args)
end, { nargs = '+', desc = 'ragls: two models answer blind, side by side; you vote, then see who was who' })
