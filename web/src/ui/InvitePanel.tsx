// Invitation links of the workspace (owners and admins): create one with an expiry and a
// number of uses, copy it, revoke it; and adding members to a private channel.
import { useEffect, useState } from 'preact/hooks';
import * as api from '../lib/api';
import { currentUser } from '../lib/session';
import type { Channel, Id } from '../lib/types';
import { describe } from '../state/chat';
import { canManageMembers, members, tenant } from '../state/workspace';
import { Dialog, ErrorText } from './common';

const EXPIRY_CHOICES: [string, number | null][] = [
	['1 hour', 3600],
	['1 day', 86_400],
	['7 days', 7 * 86_400],
	['30 days', 30 * 86_400],
	['Never', null],
];

const STATE_LABELS: Record<api.Invitation['state'], string> = {
	active: 'active',
	expired: 'expired',
	used_up: 'used up',
};

/** The link as this browser reaches the server (the server's `public_url` may be unset). */
function linkOf(invitation: api.Invitation): string {
	return `${location.origin}/invite/${invitation.code}`;
}

function describeLink(invitation: api.Invitation): string {
	const uses = invitation.max_uses === null ? `${invitation.uses} uses` : `${invitation.uses} of ${invitation.max_uses} uses`;
	const expiry = invitation.expires_at ? `expires ${new Date(invitation.expires_at).toLocaleString()}` : 'never expires';
	return `${uses} · ${expiry} · ${STATE_LABELS[invitation.state]}`;
}

export function InviteButton() {
	const [open, setOpen] = useState(false);
	const current = tenant.value;
	return (
		<>
			<button type="button" class="subtle invite-button" onClick={() => setOpen(true)}>
				Invite people
			</button>
			{open && current && (
				<Dialog title={`Invite people to ${current.name}`} onClose={() => setOpen(false)}>
					<InvitePanel tid={current.id} />
				</Dialog>
			)}
		</>
	);
}

function InvitePanel({ tid }: { tid: Id }) {
	const [links, setLinks] = useState<api.Invitation[] | null>(null);
	const [expiry, setExpiry] = useState('2');
	const [maxUses, setMaxUses] = useState('');
	const [error, setError] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);
	const [copied, setCopied] = useState<Id | null>(null);

	const reload = () =>
		api
			.listInvitations(tid)
			.then(setLinks)
			.catch((err) => setError(describe(err)));
	useEffect(() => void reload(), [tid]);

	const create = async (event: Event) => {
		event.preventDefault();
		setBusy(true);
		setError(null);
		try {
			const uses = maxUses.trim() === '' ? null : Number(maxUses);
			const created = await api.createInvitation(tid, EXPIRY_CHOICES[Number(expiry)]![1], uses);
			setLinks((list) => [created, ...(list ?? [])]);
		} catch (err) {
			setError(describe(err));
		} finally {
			setBusy(false);
		}
	};

	const revoke = async (invitation: api.Invitation) => {
		setError(null);
		try {
			await api.revokeInvitation(tid, invitation.id);
			setLinks((list) => (list ?? []).filter((i) => i.id !== invitation.id));
		} catch (err) {
			setError(describe(err));
		}
	};

	const copy = async (invitation: api.Invitation) => {
		try {
			await navigator.clipboard.writeText(linkOf(invitation));
			setCopied(invitation.id);
		} catch {
			setError('Copying is not allowed here: select the link and copy it.');
		}
	};

	return (
		<div class="invite-panel">
			<p class="muted">Anyone with a link can create an account in this workspace (or join it) until it expires, is used up or is revoked.</p>
			<form class="invite-form" onSubmit={create}>
				<label>
					Expires after
					<select name="invite_expiry" value={expiry} onChange={(e) => setExpiry(e.currentTarget.value)}>
						{EXPIRY_CHOICES.map(([label], index) => (
							<option key={label} value={String(index)}>
								{label}
							</option>
						))}
					</select>
				</label>
				<label>
					Max uses
					<input
						name="invite_max_uses"
						type="number"
						min={1}
						max={100000}
						placeholder="No limit"
						value={maxUses}
						onInput={(e) => setMaxUses(e.currentTarget.value)}
					/>
				</label>
				<button type="submit" class="primary" disabled={busy}>
					Create link
				</button>
			</form>
			<ErrorText error={error} />
			{links === null ? (
				<p class="muted">Loading…</p>
			) : links.length === 0 ? (
				<p class="muted">No invitation links yet.</p>
			) : (
				<ul class="invite-list" aria-label="Invitation links">
					{links.map((invitation) => (
						<li key={invitation.id} class="invite-link" data-state={invitation.state}>
							<input
								readOnly
								aria-label="Invitation link"
								value={linkOf(invitation)}
								onFocus={(e) => e.currentTarget.select()}
							/>
							<span class="muted">{describeLink(invitation)}</span>
							<span class="invite-actions">
								<button type="button" class="subtle" onClick={() => copy(invitation)}>
									{copied === invitation.id ? 'Copied' : 'Copy'}
								</button>
								<button type="button" class="subtle danger-text" onClick={() => revoke(invitation)}>
									Revoke
								</button>
							</span>
						</li>
					))}
				</ul>
			)}
		</div>
	);
}

/** Adding workspace members to a private channel (its creator, or an owner or admin). */
export function ChannelInviteButton({ channel }: { channel: Channel }) {
	const [open, setOpen] = useState(false);
	const me = currentUser.value?.id;
	const allowed = canManageMembers.value || channel.created_by === me;
	if (!channel.is_private || channel.channel_type === 'direct' || !channel.is_member || !allowed) return null;
	return (
		<>
			<button type="button" class="subtle" onClick={() => setOpen(true)}>
				Add people
			</button>
			{open && (
				<Dialog title={`Add people to ${channel.name}`} onClose={() => setOpen(false)}>
					<ChannelInvitePanel channel={channel} />
				</Dialog>
			)}
		</>
	);
}

function ChannelInvitePanel({ channel }: { channel: Channel }) {
	const [inChannel, setInChannel] = useState<ReadonlySet<Id> | null>(null);
	const [filter, setFilter] = useState('');
	const [error, setError] = useState<string | null>(null);

	const tid = tenant.value?.id ?? '';

	useEffect(() => {
		api
			.listChannelMembers(tid, channel.id)
			.then((page) => setInChannel(new Set(page.items.map((m) => m.user_id))))
			.catch((err) => setError(describe(err)));
	}, [channel.id]);

	const add = async (userId: Id) => {
		setError(null);
		try {
			await api.addChannelMember(tid, channel.id, userId);
			setInChannel((set) => new Set([...(set ?? []), userId]));
		} catch (err) {
			setError(describe(err));
		}
	};

	const needle = filter.trim().toLowerCase();
	const candidates = [...members.value.values()]
		.filter(
			(m) =>
				!needle || m.username.toLowerCase().includes(needle) || m.display_name.toLowerCase().includes(needle),
		)
		.sort((a, b) => a.display_name.localeCompare(b.display_name));

	return (
		<div class="invite-panel">
			<label>
				Find a member
				<input name="channel_invite_filter" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
			</label>
			<ErrorText error={error} />
			{inChannel === null ? (
				<p class="muted">Loading…</p>
			) : (
				<ul class="invite-list" aria-label="Workspace members">
					{candidates.map((m) => (
						<li key={m.user_id} class="channel-invite-row" data-user={m.username}>
							<span>
								{m.display_name} <span class="muted">@{m.username}</span>
							</span>
							{inChannel.has(m.user_id) ? (
								<span class="muted">In the channel</span>
							) : (
								<button type="button" class="subtle" onClick={() => void add(m.user_id)}>
									Add {m.display_name}
								</button>
							)}
						</li>
					))}
				</ul>
			)}
		</div>
	);
}
