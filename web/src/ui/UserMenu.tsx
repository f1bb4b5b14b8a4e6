// Who is signed in, their status picker, their profile, and sign out.
import { createPortal } from 'preact/compat';
import { useState } from 'preact/hooks';
import * as api from '../lib/api';
import { realtime } from '../lib/realtime';
import { navigate } from '../lib/router';
import { currentUser, endSession } from '../lib/session';
import type { Presence } from '../lib/types';
import { choosePresence, closeTenant, myPresence, presenceOf } from '../state/workspace';
import { Avatar, PRESENCE_LABELS, PresenceDot } from './common';
import { ProfileDialog } from './ProfileDialog';

const CHOICES: Presence[] = ['online', 'idle', 'dnd', 'invisible'];

export async function signOut(): Promise<void> {
	try {
		await api.logout(); // revokes the session's refresh token and clears the cookie
	} catch {
		// Signing out locally is what matters.
	}
	realtime.stop();
	closeTenant();
	endSession();
	navigate('/login', { replace: true });
}

export function StatusPicker() {
	const connected = realtime.state.value === 'open';
	return (
		<label class="status-picker">
			<span class="visually-hidden">Status</span>
			<select
				name="status"
				value={myPresence.value === 'offline' ? 'invisible' : myPresence.value}
				disabled={!connected}
				onChange={(event) => choosePresence(event.currentTarget.value as Presence)}
			>
				{CHOICES.map((choice) => (
					<option key={choice} value={choice}>
						{PRESENCE_LABELS[choice]}
					</option>
				))}
			</select>
		</label>
	);
}

export function UserMenu() {
	const user = currentUser.value;
	const [editing, setEditing] = useState(false);
	if (user === null) return null;
	return (
		<div class="user-menu">
			<div class="user-identity">
				<span class="avatar-with-dot">
					<Avatar name={user.display_name} id={user.id} size={32} src={user.avatar} />
					<PresenceDot presence={presenceOf(user.id)} />
				</span>
				<span class="user-names">
					<strong>{user.display_name}</strong>
					<span class="muted">@{user.username}</span>
				</span>
			</div>
			<div class="user-controls">
				<StatusPicker />
				<button type="button" class="subtle" onClick={() => setEditing(true)}>
					Profile
				</button>
				<button type="button" class="subtle" onClick={() => void signOut()}>
					Sign out
				</button>
			</div>
			{/* Out of the sidebar, whose dark controls' styles would reach into the dialog. */}
			{editing && createPortal(<ProfileDialog onClose={() => setEditing(false)} />, document.body)}
		</div>
	);
}
