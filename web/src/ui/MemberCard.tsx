// A member's card, opened from the member list: picture, name, presence, role, their local
// time (from the IANA zone in their profile) and a button to write to them directly.
import { useEffect, useState } from 'preact/hooks';
import { currentUser } from '../lib/session';
import type { Id } from '../lib/types';
import { describe } from '../state/chat';
import { members, openDirect, presenceOf } from '../state/workspace';
import { Avatar, Dialog, ErrorText, PRESENCE_LABELS, PresenceDot } from './common';

/** The time now in `zone`, written as this browser writes times; null for a zone it does not know. */
export function timeIn(zone: string, now: Date): string | null {
	try {
		return now.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', timeZone: zone });
	} catch {
		return null; // RangeError: a zone the browser's time zone data lacks
	}
}

/** The current time, re-read every few seconds while the component is shown. */
function useNow(everyMs: number): Date {
	const [now, setNow] = useState(() => new Date());
	useEffect(() => {
		const timer = window.setInterval(() => setNow(new Date()), everyMs);
		return () => window.clearInterval(timer);
	}, [everyMs]);
	return now;
}

function LocalTime({ zone }: { zone: string }) {
	const time = timeIn(zone, useNow(10_000));
	if (time === null) return null;
	return (
		<p class="local-time">
			<strong>{time}</strong> local time <span class="muted">({zone.replaceAll('_', ' ')})</span>
		</p>
	);
}

export function MemberCard({ userId, onClose }: { userId: Id; onClose: () => void }) {
	const [error, setError] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);
	const member = members.value.get(userId);
	if (member === undefined) return null;
	const state = presenceOf(userId);
	const message = () => {
		setBusy(true);
		setError(null);
		openDirect([userId])
			.then(onClose)
			.catch((err: unknown) => {
				setError(describe(err));
				setBusy(false);
			});
	};
	return (
		<Dialog title={member.display_name} onClose={onClose}>
			<div class="member-card">
				<Avatar name={member.display_name} id={userId} size={72} src={member.avatar} />
				<div>
					<p class="muted">@{member.username}</p>
					<p>
						<PresenceDot presence={state} /> {PRESENCE_LABELS[state]}
					</p>
					{member.role !== 'member' && <span class="role-badge">{member.role}</span>}
				</div>
			</div>
			{member.time_zone && <LocalTime zone={member.time_zone} />}
			<ErrorText error={error} />
			{userId !== currentUser.value?.id && (
				<div class="form-actions">
					<button type="button" class="primary" disabled={busy} onClick={message}>
						Message
					</button>
				</div>
			)}
		</Dialog>
	);
}
