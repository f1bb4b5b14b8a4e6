// The workspace sidebar: switcher, navigation, the channel tree, and the signed-in user.
import { signal } from '@preact/signals';
import { useState } from 'preact/hooks';
import * as api from '../lib/api';
import { currentPath, navigate, paths } from '../lib/router';
import type { Channel, ChannelType, Id } from '../lib/types';
import { activeChannelId, describe, type UnreadCount, unread } from '../state/chat';
import { currentUser } from '../lib/session';
import { channelLabel, channels, members, openDirect, refreshChannels, tenant } from '../state/workspace';
import { Dialog, ErrorText, Link } from './common';
import { NotificationBell } from './NotificationBell';
import { SearchButton } from './SearchBox';
import { UserMenu } from './UserMenu';
import { mutedChannels } from '../state/notifications';

/** On a narrow screen the sidebar is a drawer. */
export const navOpen = signal(false);

function depth(channel: Channel): number {
	return channel.path.split('.').length - 1;
}

/** Categories, the channels we belong to, and the one on screen (direct ones apart). */
function visibleTree(all: Channel[], active: Id | null): Channel[] {
	return all.filter(
		(c) => c.channel_type !== 'direct' && (c.channel_type === 'category' || c.is_member || c.id === active),
	);
}

/** An archived channel (not a category) is listed apart, under "Archived". */
function listedApart(channel: Channel): boolean {
	return channel.archived && channel.channel_type !== 'category';
}

// A direct conversation has at most this many members, us included (the server's rule).
const DIRECT_MAX_MEMBERS = 8;

export function Sidebar() {
	const open = tenant.value;
	const [creating, setCreating] = useState<{ parent: Id | null } | null>(null);
	const [startingDirect, setStartingDirect] = useState(false);
	if (open === null) return null;
	const active = activeChannelId.value;
	const shown = visibleTree(channels.value, active);
	const tree = shown.filter((c) => !listedApart(c));
	const archived = shown.filter(listedApart);
	const direct = channels.value.filter((c) => c.channel_type === 'direct');
	const here = currentPath.value;

	return (
		<nav class={`sidebar${navOpen.value ? ' open' : ''}`} aria-label="Workspace">
			<header class="sidebar-header">
				<Link href="/tenants" class="tenant-switch" title="Switch workspace">
					<span class="tenant-initial" aria-hidden="true">
						{open.name.slice(0, 1).toUpperCase()}
					</span>
					<span class="tenant-name">{open.name}</span>
				</Link>
				<NotificationBell />
				<button type="button" class="icon-button only-narrow" aria-label="Close menu" onClick={() => (navOpen.value = false)}>
					×
				</button>
			</header>
			<SearchButton />
			<ul class="nav-links">
				<li>
					<Link href={paths.explore(open.id)} aria-current={here === paths.explore(open.id) ? 'page' : undefined}>
						Explore channels
					</Link>
				</li>
				<li>
					<Link href={paths.calls(open.id)} aria-current={here === paths.calls(open.id) ? 'page' : undefined}>
						Calls
					</Link>
				</li>
			</ul>
			<div class="section-title">
				<h2 id="channels-heading">Channels</h2>
				<button type="button" class="icon-button" aria-label="Create channel" onClick={() => setCreating({ parent: null })}>
					+
				</button>
			</div>
			<ul class="channel-tree" aria-labelledby="channels-heading">
				{tree.map((channel) =>
					channel.channel_type === 'category' ? (
						<li key={channel.id} class="category" style={{ paddingLeft: `${depth(channel) * 12}px` }}>
							<span>{channel.name}</span>
							<button
								type="button"
								class="icon-button small"
								aria-label={`Create channel in ${channel.name}`}
								onClick={() => setCreating({ parent: channel.id })}
							>
								+
							</button>
						</li>
					) : (
						<li key={channel.id} style={{ paddingLeft: `${depth(channel) * 12}px` }}>
							<Link
								href={paths.channel(open.id, channel.id)}
								class={`channel-link${unread.value.has(channel.id) ? ' unread' : ''}${channel.is_member ? '' : ' preview'}${mutedChannels.value.has(channel.id) ? ' channel-muted' : ''}`}
								aria-current={channel.id === active ? 'page' : undefined}
								data-unread={unread.value.get(channel.id)?.count ?? 0}
								data-mentions={unread.value.get(channel.id)?.mentions ?? 0}
								onClick={() => (navOpen.value = false)}
							>
								<span class="hash" aria-hidden="true">
									{channel.is_private ? '🔒' : '#'}
								</span>
								<span class="channel-name">{channel.name}</span>
								<UnreadBadge counts={unread.value.get(channel.id)} />
							</Link>
						</li>
					),
				)}
			</ul>
			{archived.length > 0 && (
				<>
					<div class="section-title">
						<h2 id="archived-heading">Archived</h2>
					</div>
					<ul class="channel-tree archived-list" aria-labelledby="archived-heading">
						{archived.map((channel) => (
							<li key={channel.id}>
								<Link
									href={paths.channel(open.id, channel.id)}
									class="channel-link archived"
									aria-current={channel.id === active ? 'page' : undefined}
									title="Archived: read-only"
									onClick={() => (navOpen.value = false)}
								>
									<span class="hash" aria-hidden="true">
										{channel.is_private ? '🔒' : '#'}
									</span>
									<span class="channel-name">{channel.name}</span>
								</Link>
							</li>
						))}
					</ul>
				</>
			)}
			<div class="section-title">
				<h2 id="direct-heading">Direct messages</h2>
				<button type="button" class="icon-button" aria-label="New direct message" onClick={() => setStartingDirect(true)}>
					+
				</button>
			</div>
			<ul class="channel-tree direct-list" aria-labelledby="direct-heading">
				{direct.map((channel) => (
					<li key={channel.id}>
						<Link
							href={paths.channel(open.id, channel.id)}
							class={`channel-link${unread.value.has(channel.id) ? ' unread' : ''}${mutedChannels.value.has(channel.id) ? ' channel-muted' : ''}`}
							aria-current={channel.id === active ? 'page' : undefined}
							data-unread={unread.value.get(channel.id)?.count ?? 0}
							data-mentions={unread.value.get(channel.id)?.mentions ?? 0}
							onClick={() => (navOpen.value = false)}
						>
							<span class="hash" aria-hidden="true">
								@
							</span>
							<span class="channel-name">{channelLabel(channel)}</span>
							<UnreadBadge counts={unread.value.get(channel.id)} />
						</Link>
					</li>
				))}
			</ul>
			<div class="sidebar-footer">
				<UserMenu />
			</div>
			{creating && <CreateChannelDialog parent={creating.parent} onClose={() => setCreating(null)} />}
			{startingDirect && <DirectDialog onClose={() => setStartingDirect(false)} />}
		</nav>
	);
}

/** A channel's unread messages and mentions of us, or a dot when only a followed thread moved. */
function UnreadBadge({ counts }: { counts: UnreadCount | undefined }) {
	if (counts === undefined) return null;
	if (counts.count === 0) return <span class="unread-dot" role="img" aria-label="unread messages" />;
	const messages = `unread messages: ${counts.count}`;
	const mentions = `mentions of you: ${counts.mentions}`;
	return (
		<>
			{counts.mentions > 0 && (
				<span class="mention-count" role="img" aria-label={mentions} title={mentions}>
					@{counts.mentions}
				</span>
			)}
			<span class="unread-count" role="img" aria-label={messages} title={messages}>
				{counts.count > 99 ? '99+' : counts.count}
			</span>
		</>
	);
}

function CreateChannelDialog(props: { parent: Id | null; onClose: () => void }) {
	const open = tenant.value!;
	const [name, setName] = useState('');
	const [type, setType] = useState<ChannelType>('text');
	const [parent, setParent] = useState<Id | ''>(props.parent ?? '');
	const [isPrivate, setPrivate] = useState(false);
	const [purpose, setPurpose] = useState('');
	const [error, setError] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);
	const categories = channels.value.filter((c) => c.channel_type === 'category');

	const submit = async (event: Event) => {
		event.preventDefault();
		setBusy(true);
		setError(null);
		try {
			const created = await api.createChannel(open.id, {
				name: name.trim(),
				channel_type: type,
				parent_id: parent || null,
				is_private: isPrivate,
				purpose: purpose.trim() || null,
			});
			await refreshChannels();
			props.onClose();
			if (created.channel_type !== 'category') navigate(paths.channel(open.id, created.id));
		} catch (err) {
			setError(describe(err));
			setBusy(false);
		}
	};

	return (
		<Dialog title="Create channel" onClose={props.onClose}>
			<form class="form" onSubmit={submit}>
				<label>
					Name
					<input
						name="channel_name"
						value={name}
						required
						maxLength={100}
						pattern="[^.]*\S[^.]*"
						title="Any name without dots"
						autofocus
						onInput={(e) => setName(e.currentTarget.value)}
					/>
				</label>
				<fieldset class="choice-row">
					<legend>Kind</legend>
					<label>
						<input type="radio" name="channel_type" checked={type === 'text'} onChange={() => setType('text')} /> Text channel
					</label>
					<label>
						<input type="radio" name="channel_type" checked={type === 'category'} onChange={() => setType('category')} />{' '}
						Category
					</label>
				</fieldset>
				<label>
					In category
					<select name="parent" value={parent} onChange={(e) => setParent(e.currentTarget.value)}>
						<option value="">(top level)</option>
						{categories.map((c) => (
							<option key={c.id} value={c.id}>
								{c.path.replaceAll('.', ' / ')}
							</option>
						))}
					</select>
				</label>
				<label>
					Purpose (optional)
					<input name="purpose" value={purpose} maxLength={1000} onInput={(e) => setPurpose(e.currentTarget.value)} />
				</label>
				<label class="checkbox">
					<input type="checkbox" name="is_private" checked={isPrivate} onChange={(e) => setPrivate(e.currentTarget.checked)} />{' '}
					Private (only invited members can see it)
				</label>
				<ErrorText error={error} />
				<div class="form-actions">
					<button type="button" onClick={props.onClose}>
						Cancel
					</button>
					<button type="submit" class="primary" disabled={busy}>
						Create
					</button>
				</div>
			</form>
		</Dialog>
	);
}

/** Find members by name and start (or reopen) a conversation with up to seven of them. */
function DirectDialog({ onClose }: { onClose: () => void }) {
	const [query, setQuery] = useState('');
	const [chosen, setChosen] = useState<Id[]>([]);
	const [error, setError] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);
	const me = currentUser.value?.id;
	const needle = query.trim().toLowerCase();
	const found = [...members.value.values()]
		.filter((m) => m.user_id !== me)
		.filter((m) => needle === '' || m.username.toLowerCase().includes(needle) || m.display_name.toLowerCase().includes(needle))
		.sort((a, b) => a.display_name.localeCompare(b.display_name));
	const full = chosen.length >= DIRECT_MAX_MEMBERS - 1;

	const toggle = (id: Id) => setChosen(chosen.includes(id) ? chosen.filter((c) => c !== id) : [...chosen, id]);

	const submit = async (event: Event) => {
		event.preventDefault();
		if (chosen.length === 0) return;
		setBusy(true);
		setError(null);
		try {
			await openDirect(chosen);
			onClose();
		} catch (err) {
			setError(describe(err));
			setBusy(false);
		}
	};

	return (
		<Dialog title="New direct message" onClose={onClose}>
			<form class="form" onSubmit={submit}>
				<label>
					Find a member
					<input
						name="member_query"
						value={query}
						autofocus
						placeholder="Name or username"
						onInput={(e) => setQuery(e.currentTarget.value)}
					/>
				</label>
				<fieldset class="direct-choices">
					<legend>
						Members ({chosen.length} of at most {DIRECT_MAX_MEMBERS - 1} chosen)
					</legend>
					{found.length === 0 && <p class="muted">Nobody here by that name.</p>}
					{found.map((m) => (
						<label key={m.user_id} class="checkbox">
							<input
								type="checkbox"
								checked={chosen.includes(m.user_id)}
								disabled={full && !chosen.includes(m.user_id)}
								onChange={() => toggle(m.user_id)}
							/>{' '}
							{m.display_name} <span class="muted">@{m.username}</span>
						</label>
					))}
				</fieldset>
				<ErrorText error={error} />
				<div class="form-actions">
					<button type="button" onClick={onClose}>
						Cancel
					</button>
					<button type="submit" class="primary" disabled={busy || chosen.length === 0}>
						Start conversation
					</button>
				</div>
			</form>
		</Dialog>
	);
}
