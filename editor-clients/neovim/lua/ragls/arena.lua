-- :RaglsArena: two models answer the same question blind, side by side as A and B (in a new tab,
-- a split), then the vote (vim.ui.select) reveals their names and the server records it.
local ragls = require('ragls')

local M = {}

local VOTES = { { 'a', 'A is better' }, { 'b', 'B is better' }, { 'tie', 'Tie' }, { 'both_bad', 'Both are bad' } }

--- A scratch buffer holding `text`, shown in the current window under `label`.
local function show(label, text)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, true, vim.split(text ~= '' and text or '(no answer)', '\n'))
  vim.bo[buf].filetype = 'markdown'
  vim.bo[buf].modifiable = false
  vim.api.nvim_win_set_buf(0, buf)
  vim.wo.winbar = label
  vim.wo.wrap = true
  return vim.api.nvim_get_current_win()
end

--- Ask `question` to two arena models (arena.models); the answers open side by side.
---@param question string
function M.ask(question)
  local client, why = ragls.client()
  if not client then
    return ragls.notify(why, vim.log.levels.ERROR)
  end
  ragls.notify('arena: two models are answering…')
  ragls.call(client, 'request', 'ragls/arena', { question = question }, function(err, match)
    if err then
      return ragls.notify('arena: ' .. err.message, vim.log.levels.ERROR)
    end
    vim.cmd('tabnew')
    local left = show('A', match.a)
    vim.cmd('rightbelow vsplit')
    local right = show('B', match.b)
    vim.schedule(function() M.vote(client, match, left, right) end)
  end)
end

--- Take the vote on `match`, send it, and name the models in the two windows' bars.
function M.vote(client, match, left, right)
  local labels = vim.tbl_map(function(v) return v[2] end, VOTES)
  vim.ui.select(labels, { prompt = 'ragls arena: which answer is better?' }, function(_, choice)
    if not choice then
      return ragls.notify('arena: no vote, nothing recorded')
    end
    local params = { id = match.id, vote = VOTES[choice][1] }
    ragls.call(client, 'request', 'ragls/arenaVote', params, function(err, result)
      if err then
        return ragls.notify('arena: vote not recorded: ' .. err.message, vim.log.levels.ERROR)
      end
      for win, name in pairs({ [left] = 'A: ' .. result.a, [right] = 'B: ' .. result.b }) do
        if vim.api.nvim_win_is_valid(win) then
          vim.wo[win].winbar = name
        end
      end
      ragls.notify(('arena: A was %s, B was %s (vote recorded in %s)'):format(result.a, result.b, result.votesFile))
    end)
  end)
end

return M
