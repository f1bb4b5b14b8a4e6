// The workspace sidebar: switcher, navigation, the channel tree, and the signed-in user.
import { signal } from '@preact/signals';
import { useState } from 'preact/hooks';
import * as api from '../lib/api';
import { currentPath, navigate, paths } from '../lib/router';
import type { Channel, ChannelType, Id } from '../lib/types';
import { activeChannelId, describe, unread } from '../state/chat';
import { channels, refreshChannels, tenant } from '../state/workspace';
import { Dialog, ErrorText, Link } from './common';
import { UserMenu } from './UserMenu';

/** On a narrow screen the sidebar is a drawer. */
export const navOpen = signal(false);

function depth(channel: Channel): number {
	return channel.path.split('.').length - 1;
}

/** Categories, the channels we belong to, and the one on screen. */
function visibleTree(all: Channel[], active: Id | null): Channel[] {
	return all.filter((c) => c.channel_type === 'category' || c.is_member || c.id === active);
}

export function Sidebar() {
	const open = tenant.value;
	const [creating, setCreating] = useState<{ parent: Id | null } | null>(null);
	if (open === null) return null;
	const active = activeChannelId.value;
	const tree = visibleTree(channels.value, active);
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
				<button type="button" class="icon-button only-narrow" aria-label="Close menu" onClick={() => (navOpen.value = false)}>
					×
				</button>
			</header>
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
								class={`channel-link${unread.value.has(channel.id) ? ' unread' : ''}${channel.is_member ? '' : ' preview'}`}
								aria-current={channel.id === active ? 'page' : undefined}
								onClick={() => (navOpen.value = false)}
							>
								<span class="hash" aria-hidden="true">
									{channel.is_private ? '🔒' : '#'}
								</span>
								<span class="channel-name">{channel.name}</span>
								{unread.value.has(channel.id) && (
									<span class="unread-dot" role="img" aria-label="unread messages" />
								)}
							</Link>
						</li>
					),
				)}
			</ul>
			<div class="sidebar-footer">
				<UserMenu />
			</div>
			{creating && <CreateChannelDialog parent={creating.parent} onClose={() => setCreating(null)} />}
		</nav>
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
