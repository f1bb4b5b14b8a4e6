"""The Redis side of the cluster: key layout and the Lua scripts that change it atomically.

Every key starts with the configured prefix `P` (`ROOMLER__REDIS__KEY_PREFIX`):

    P epoch              random id written by the first node after Redis started empty
    P nodes              set of node ids that registered
    P node:<n>:alive     heartbeat of node n, expires after NODE_TTL_SECS
    P node:<n>:conns     hash connection id -> user id, node n's connections
    P node:<n>:typing    set of "<channel id>:<user id>" typing on node n
    P node:<n>:confs     set of conference ids whose router node n owns
    P conns              hash connection id -> "<node id> <user id>"
    P user:<u>           hash node id -> how many connections user u has there
    P chosen             hash user id -> chosen presence, while the user is connected
    P told               hash user id -> what the user's peers were last told (absent: offline)
    P conf:<c>           hash: `node` owning conference c's router, its `caps` (JSON)

A script runs atomically, so exactly one node sees each presence transition (and
announces it) and exactly one node reaps a dead node. Scripts are sent with EVALSHA and
loaded whenever the link (re)connects. Keys are built inside the scripts from `P`, so
this needs a single Redis (or a primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

# Shared by every script: ARGV[1] is always the key prefix.
_PRELUDE = r"""
local P = ARGV[1]

local function visible(chosen, connected)
  if (not connected) or (not chosen) or chosen == 'invisible' then return 'offline' end
  return chosen
end

-- Bring `told` in line with what the user's peers should see now.
-- Returns the current value and 1 if it changed (the caller announces it), else 0.
local function settle(uid)
  local connected = redis.call('EXISTS', P .. 'user:' .. uid) == 1
  local vis = visible(redis.call('HGET', P .. 'chosen', uid), connected)
  local told = redis.call('HGET', P .. 'told', uid) or 'offline'
  if vis == told then return {vis, 0} end
  if vis == 'offline' then
    redis.call('HDEL', P .. 'told', uid)
  else
    redis.call('HSET', P .. 'told', uid, vis)
  end
  return {vis, 1}
end

local function register(nid, cid, uid)
  if redis.call('HSETNX', P .. 'node:' .. nid .. ':conns', cid, uid) == 1 then
    redis.call('HSET', P .. 'conns', cid, nid .. ' ' .. uid)
    redis.call('HINCRBY', P .. 'user:' .. uid, nid, 1)
  end
end

local function forget_choice_if_gone(uid)
  if redis.call('EXISTS', P .. 'user:' .. uid) == 0 then
    redis.call('HDEL', P .. 'chosen', uid)
  end
end

local function unregister(nid, cid, uid)
  if redis.call('HDEL', P .. 'node:' .. nid .. ':conns', cid) == 1 then
    redis.call('HDEL', P .. 'conns', cid)
    if redis.call('HINCRBY', P .. 'user:' .. uid, nid, -1) <= 0 then
      redis.call('HDEL', P .. 'user:' .. uid, nid)
    end
  end
  forget_choice_if_gone(uid)
end

-- Remove node nid and everything it held; appends to the three result lists.
local function reap(nid, changes, typing, confs)
  local base = P .. 'node:' .. nid
  local conns = redis.call('HGETALL', base .. ':conns')
  local users, seen = {}, {}
  for i = 1, #conns, 2 do
    redis.call('HDEL', P .. 'conns', conns[i])
    local uid = conns[i + 1]
    if not seen[uid] then
      seen[uid] = true
      users[#users + 1] = uid
    end
  end
  for _, uid in ipairs(users) do
    redis.call('HDEL', P .. 'user:' .. uid, nid)
    forget_choice_if_gone(uid)
    local state = settle(uid)
    if state[2] == 1 then
      changes[#changes + 1] = uid
      changes[#changes + 1] = state[1]
    end
  end
  for _, entry in ipairs(redis.call('SMEMBERS', base .. ':typing')) do
    typing[#typing + 1] = entry
  end
  for _, cid in ipairs(redis.call('SMEMBERS', base .. ':confs')) do
    if redis.call('HGET', P .. 'conf:' .. cid, 'node') == nid then
      redis.call('DEL', P .. 'conf:' .. cid)
      confs[#confs + 1] = cid
    end
  end
  redis.call('DEL', base .. ':conns', base .. ':typing', base .. ':confs', base .. ':alive')
  redis.call('SREM', P .. 'nodes', nid)
end
"""


@dataclass(frozen=True)
class Script:
    name: str
    body: str
    source: str = field(init=False)
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        source = _PRELUDE + self.body
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "sha", hashlib.sha1(source.encode()).hexdigest())

    def command(self, prefix: str, *argv: str | int) -> tuple[str | int, ...]:
        """The EVALSHA command line; every value is passed in ARGV, ARGV[1] the prefix."""
        return ("EVALSHA", self.sha, 0, prefix, *argv)


# ARGV: P, node, connection, user, stored choice -> {chosen, told, changed}
ARRIVE = Script(
    "arrive",
    r"""
local uid = ARGV[4]
register(ARGV[2], ARGV[3], uid)
redis.call('HSETNX', P .. 'chosen', uid, ARGV[5])
local state = settle(uid)
return {redis.call('HGET', P .. 'chosen', uid), state[1], state[2]}
""",
)

# ARGV: P, node, connection, user -> {told, changed}
DEPART = Script(
    "depart",
    r"""
unregister(ARGV[2], ARGV[3], ARGV[4])
return settle(ARGV[4])
""",
)

# ARGV: P, user, choice -> {previous choice or '', told, changed}
CHOOSE = Script(
    "choose",
    r"""
local uid = ARGV[2]
local previous = redis.call('HGET', P .. 'chosen', uid) or ''
if redis.call('EXISTS', P .. 'user:' .. uid) == 1 then
  redis.call('HSET', P .. 'chosen', uid, ARGV[3])
end
local state = settle(uid)
return {previous, state[1], state[2]}
""",
)

# ARGV: P, viewer, user... -> presence of each user as the viewer sees it
SEEN = Script(
    "seen",
    r"""
local viewer = ARGV[2]
local out = {}
for i = 3, #ARGV do
  local uid = ARGV[i]
  local chosen = false
  if redis.call('EXISTS', P .. 'user:' .. uid) == 1 then
    chosen = redis.call('HGET', P .. 'chosen', uid)
  end
  if not chosen then
    out[#out + 1] = 'offline'
  elseif uid == viewer then
    out[#out + 1] = chosen
  else
    out[#out + 1] = visible(chosen, true)
  end
end
return out
""",
)

# ARGV: P, origin node, kind, user to skip, connection to skip, body, user...
# Publishes one envelope per other node holding connections of the users, naming those.
ROUTE = Script(
    "route",
    r"""
local origin, kind, skip_user, skip_conn, body = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local targets, order = {}, {}
for i = 7, #ARGV do
  local uid = ARGV[i]
  if uid ~= skip_user then
    for _, nid in ipairs(redis.call('HKEYS', P .. 'user:' .. uid)) do
      if nid ~= origin then
        local list = targets[nid]
        if list == nil then
          list = {}
          targets[nid] = list
          order[#order + 1] = nid
        end
        list[#list + 1] = uid
      end
    end
  end
end
for _, nid in ipairs(order) do
  local header = kind .. '\n' .. table.concat(targets[nid], ',') .. '\n' .. skip_conn
  redis.call('PUBLISH', P .. 'node:' .. nid, header .. '\n' .. body)
end
return #order
""",
)

# ARGV: P, origin node, connection, frame -> 1 if sent to the node holding it
TO_CONNECTION = Script(
    "to_connection",
    r"""
local where = redis.call('HGET', P .. 'conns', ARGV[3])
if not where then return 0 end
local nid = string.match(where, '^(%S+)')
if nid == ARGV[2] then return 0 end
redis.call('PUBLISH', P .. 'node:' .. nid, 'c\n' .. ARGV[3] .. '\n\n' .. ARGV[4])
return 1
""",
)

# ARGV: P, node, ttl ms -> 1 if the node was not registered (new, or reaped as dead)
HEARTBEAT = Script(
    "heartbeat",
    r"""
redis.call('SET', P .. 'node:' .. ARGV[2] .. ':alive', '1', 'PX', ARGV[3])
return redis.call('SADD', P .. 'nodes', ARGV[2])
""",
)

# ARGV: P, this node -> {dead nodes, {user, told}..., typing entries, conferences}
SWEEP = Script(
    "sweep",
    r"""
local dead, changes, typing, confs = {}, {}, {}, {}
for _, nid in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if nid ~= ARGV[2] and redis.call('EXISTS', P .. 'node:' .. nid .. ':alive') == 0 then
    dead[#dead + 1] = nid
    reap(nid, changes, typing, confs)
  end
end
return {dead, changes, typing, confs}
""",
)

# ARGV: P, this node -> {{user, told}..., typing entries, conferences}: a clean leave.
LEAVE = Script(
    "leave",
    r"""
local changes, typing, confs = {}, {}, {}
reap(ARGV[2], changes, typing, confs)
return {changes, typing, confs}
""",
)

# ARGV: P, node, ttl ms, epoch seen, fresh epoch,
#       n, (connection, user, choice) * n, m, (user, told) * m, t, typing entry * t
# Replaces everything Redis holds for this node with the node's own state. The `told`
# values are this node's memory of what peers were told; they are used only when Redis
# lost its data (the epoch changed), so peers are not told again what they know.
# -> {epoch, {user, told, changed}...}
RESYNC = Script(
    "resync",
    r"""
local nid = ARGV[2]
redis.call('SET', P .. 'node:' .. nid .. ':alive', '1', 'PX', ARGV[3])
redis.call('SADD', P .. 'nodes', nid)
local epoch = redis.call('GET', P .. 'epoch')
if not epoch then
  epoch = ARGV[5]
  redis.call('SET', P .. 'epoch', epoch)
end
local seed = epoch ~= ARGV[4]
local users, seen = {}, {}
local function touch(uid)
  if not seen[uid] then
    seen[uid] = true
    users[#users + 1] = uid
  end
end
local i = 6
local fresh, keep = {}, {}
for _ = 1, tonumber(ARGV[i]) do
  fresh[#fresh + 1] = {ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]}
  keep[ARGV[i + 1]] = true
  i = i + 3
end
i = i + 1
local old = redis.call('HGETALL', P .. 'node:' .. nid .. ':conns')
for k = 1, #old, 2 do
  if not keep[old[k]] then
    unregister(nid, old[k], old[k + 1])
    touch(old[k + 1])
  end
end
for _, c in ipairs(fresh) do
  register(nid, c[1], c[2])
  redis.call('HSET', P .. 'chosen', c[2], c[3])
  touch(c[2])
end
for _ = 1, tonumber(ARGV[i]) do
  if seed then redis.call('HSETNX', P .. 'told', ARGV[i + 1], ARGV[i + 2]) end
  i = i + 2
end
i = i + 1
local typing = P .. 'node:' .. nid .. ':typing'
redis.call('DEL', typing)
for _ = 1, tonumber(ARGV[i]) do
  redis.call('SADD', typing, ARGV[i + 1])
  i = i + 1
end
local out = {}
for _, uid in ipairs(users) do
  local state = settle(uid)
  out[#out + 1] = {uid, state[1], state[2]}
end
return {epoch, out}
""",
)

# ARGV: P, conference, node -> {owner, caps or ''}: the owner is this node unless another
# live node already hosts the conference (a dead owner's claim is taken over).
CLAIM = Script(
    "claim",
    r"""
local key = P .. 'conf:' .. ARGV[2]
local owner = redis.call('HGET', key, 'node')
if owner and owner ~= ARGV[3] and redis.call('EXISTS', P .. 'node:' .. owner .. ':alive') == 1 then
  return {owner, redis.call('HGET', key, 'caps') or ''}
end
if owner ~= ARGV[3] then redis.call('DEL', key) end
redis.call('HSET', key, 'node', ARGV[3])
redis.call('SADD', P .. 'node:' .. ARGV[3] .. ':confs', ARGV[2])
return {ARGV[3], ''}
""",
)

# ARGV: P, conference, node, caps: the owner's router is up; others answer `start` with caps.
HOSTED = Script(
    "hosted",
    r"""
local key = P .. 'conf:' .. ARGV[2]
if redis.call('HGET', key, 'node') == ARGV[3] then redis.call('HSET', key, 'caps', ARGV[4]) end
return 0
""",
)

# ARGV: P, conference -> the live node hosting it, or ''
OWNER = Script(
    "owner",
    r"""
local owner = redis.call('HGET', P .. 'conf:' .. ARGV[2], 'node')
if owner and redis.call('EXISTS', P .. 'node:' .. owner .. ':alive') == 1 then return owner end
return ''
""",
)

# ARGV: P, conference, node: the node no longer hosts the conference.
RELEASE = Script(
    "release",
    r"""
local key = P .. 'conf:' .. ARGV[2]
if redis.call('HGET', key, 'node') == ARGV[3] then redis.call('DEL', key) end
redis.call('SREM', P .. 'node:' .. ARGV[3] .. ':confs', ARGV[2])
return 0
""",
)

# ARGV: P, conference, node, ttl ms -> 1 if no live node hosts the conference and this node
# keeps its attendance (the participant records of a conference whose host died or shut
# down: conference/attendance.py); one node at a time, the watch expiring with its node.
WATCH = Script(
    "watch",
    r"""
local owner = redis.call('HGET', P .. 'conf:' .. ARGV[2], 'node')
if owner and redis.call('EXISTS', P .. 'node:' .. owner .. ':alive') == 1 then return 0 end
local key = P .. 'conf:' .. ARGV[2] .. ':watch'
local holder = redis.call('GET', key)
if holder and holder ~= ARGV[3] then return 0 end
redis.call('SET', key, ARGV[3], 'PX', ARGV[4])
return 1
""",
)

ALL: tuple[Script, ...] = (
    ARRIVE,
    DEPART,
    CHOOSE,
    SEEN,
    ROUTE,
    TO_CONNECTION,
    HEARTBEAT,
    SWEEP,
    LEAVE,
    RESYNC,
    CLAIM,
    HOSTED,
    OWNER,
    RELEASE,
    WATCH,
)
