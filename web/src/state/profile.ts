// Profiles: a user's picture on screen, and keeping names and pictures current as users
// change them (`user:updated`, to everyone sharing a workspace with the user).
import { realtime } from '../lib/realtime';
import { currentUser, updateUser } from '../lib/session';
import type { Id, UserUpdated } from '../lib/types';
import { members } from './workspace';

/** The member's picture URL, or null (their initials are shown instead). */
export function avatarOf(userId: Id): string | null {
	return members.value.get(userId)?.avatar ?? null;
}

/** Show a user's new name, picture and time zone wherever they appear. */
export function applyProfile({ id, display_name, avatar, time_zone }: UserUpdated['user']): void {
	const member = members.value.get(id);
	if (member !== undefined) {
		members.value = new Map(members.value).set(id, { ...member, display_name, avatar, time_zone });
	}
	const me = currentUser.value;
	if (me !== null && me.id === id) updateUser({ ...me, display_name, avatar, time_zone });
}

realtime.on<UserUpdated>('user:updated', ({ user }) => applyProfile(user));
