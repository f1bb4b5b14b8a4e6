// The workspace's members with their presence, and adding a member (owners and admins).
import { signal } from '@preact/signals';
import { useState } from 'preact/hooks';
import type { Id, Presence, TenantMember } from '../lib/types';
import { describe } from '../state/chat';
import { addMember, canManageMembers, members, presenceOf, setMemberRole, tenant } from '../state/workspace';
import { Avatar, ErrorText, PRESENCE_LABELS, PresenceDot } from './common';
import { InviteButton } from './InvitePanel';
import { MemberCard } from './MemberCard';

/** On a narrow screen the member list is a drawer. */
export const membersOpen = signal(false);

/** The member whose card is open, if any. */
const shownMember = signal<Id | null>(null);

const RANK: Record<Presence, number> = { online: 0, idle: 1, dnd: 2, invisible: 3, offline: 3 };

function sorted(list: TenantMember[]): TenantMember[] {
	return [...list].sort(
		(a, b) =>
			RANK[presenceOf(a.user_id)] - RANK[presenceOf(b.user_id)] ||
			a.display_name.localeCompare(b.display_name),
	);
}

export function MemberList() {
	const list = sorted([...members.value.values()]);
	return (
		<aside class={`members${membersOpen.value ? ' open' : ''}`} aria-labelledby="members-heading">
			<div class="section-title">
				<h2 id="members-heading">Members — {list.length}</h2>
				<button type="button" class="icon-button only-narrow" aria-label="Close members" onClick={() => (membersOpen.value = false)}>
					×
				</button>
			</div>
			{canManageMembers.value && <AddMemberForm />}
			{canManageMembers.value && <InviteButton />}
			<ul class="member-list">
				{list.map((member) => {
					const state = presenceOf(member.user_id);
					return (
						<li
							key={member.user_id}
							class="member"
							data-user={member.username}
							data-presence={state}
							aria-label={`${member.display_name}, ${PRESENCE_LABELS[state]}`}
						>
							<button
								type="button"
								class="member-open"
								aria-haspopup="dialog"
								aria-label={member.display_name}
								title={`Profile of ${member.display_name}`}
								onClick={() => (shownMember.value = member.user_id)}
							>
								<span class="avatar-with-dot">
									<Avatar name={member.display_name} id={member.user_id} size={28} src={member.avatar} />
									<PresenceDot presence={state} />
								</span>
								<span class="member-name">{member.display_name}</span>
							</button>
							{canManageMembers.value ? (
								<RoleChoice member={member} />
							) : (
								member.role !== 'member' && <span class="role-badge">{member.role}</span>
							)}
						</li>
					);
				})}
			</ul>
			{shownMember.value !== null && (
				<MemberCard userId={shownMember.value} onClose={() => (shownMember.value = null)} />
			)}
		</aside>
	);
}

/** An owner or admin sets a member's role; only an owner gives or takes the owner role. */
function RoleChoice({ member }: { member: TenantMember }) {
	const [error, setError] = useState<string | null>(null);
	const owner = tenant.value?.role === 'owner';
	const roles = owner || member.role === 'owner' ? (['member', 'admin', 'owner'] as const) : (['member', 'admin'] as const);
	return (
		<>
			<select
				class="role-choice"
				aria-label={`Role of ${member.display_name}`}
				value={member.role}
				disabled={member.role === 'owner' && !owner}
				onChange={(e) => {
					setError(null);
					setMemberRole(member.user_id, e.currentTarget.value as TenantMember['role']).catch((err: unknown) =>
						setError(describe(err)),
					);
				}}
			>
				{roles.map((role) => (
					<option key={role} value={role}>
						{role}
					</option>
				))}
			</select>
			<ErrorText error={error} />
		</>
	);
}

function AddMemberForm() {
	const [username, setUsername] = useState('');
	const [error, setError] = useState<string | null>(null);
	const [done, setDone] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);

	const submit = async (event: Event) => {
		event.preventDefault();
		setBusy(true);
		setError(null);
		setDone(null);
		try {
			const member = await addMember(username.trim());
			setDone(`${member.display_name} was added.`);
			setUsername('');
			window.setTimeout(() => setDone(null), 5_000);
		} catch (err) {
			setError(describe(err));
		} finally {
			setBusy(false);
		}
	};

	return (
		<form class="add-member" onSubmit={submit}>
			<label>
				<span class="visually-hidden">Username to add</span>
				<input
					name="member_username"
					placeholder="Add by username"
					value={username}
					required
					onInput={(e) => setUsername(e.currentTarget.value)}
				/>
			</label>
			<button type="submit" disabled={busy}>
				Add
			</button>
			<ErrorText error={error} />
			{done && (
				<p class="muted" role="status">
					{done}
				</p>
			)}
		</form>
	);
}

/** Opens the member drawer on a narrow screen (hidden on a wide one). */
export function MembersButton() {
	return (
		<button type="button" class="subtle only-narrow" onClick={() => (membersOpen.value = true)}>
			Members
		</button>
	);
}
