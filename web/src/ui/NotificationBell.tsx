// The bell in the sidebar: how many notifications are unread, and a panel listing them
// (newest first) that opens each one's channel and marks it read, or marks all read.
import { useState } from 'preact/hooks';
import { navigate, paths } from '../lib/router';
import type { UserNotification } from '../lib/types';
import { describe } from '../state/chat';
import {
	askDesktopPermission,
	describeNotification,
	desktopPermission,
	notifications,
	readAllNotifications,
	readNotification,
	unreadNotifications,
} from '../state/notifications';
import { Dialog, ErrorText, formatTime } from './common';
import { navOpen } from './Sidebar';

export function NotificationBell() {
	const [open, setOpen] = useState(false);
	const count = unreadNotifications.value;
	const label = count > 0 ? `Notifications, ${count} unread` : 'Notifications';
	return (
		<>
			<button
				type="button"
				class="icon-button bell"
				aria-label={label}
				title={label}
				data-unread={count}
				onClick={() => setOpen(true)}
			>
				<svg viewBox="0 0 24 24" width="18" height="18" aria-hidden="true">
					<path
						fill="currentColor"
						d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z"
					/>
				</svg>
				{count > 0 && (
					<span class="bell-count" aria-hidden="true">
						{count > 99 ? '99+' : count}
					</span>
				)}
			</button>
			{open && <NotificationPanel onClose={() => setOpen(false)} />}
		</>
	);
}

function NotificationPanel({ onClose }: { onClose: () => void }) {
	const [error, setError] = useState<string | null>(null);
	const list = notifications.value;

	const show = (note: UserNotification) => {
		onClose();
		navOpen.value = false;
		navigate(paths.channel(note.tenant_id, note.channel_id));
		readNotification(note).catch((err: unknown) => setError(describe(err)));
	};

	return (
		<Dialog title="Notifications" onClose={onClose}>
			<div class="notification-tools">
				<button
					type="button"
					class="subtle"
					disabled={unreadNotifications.value === 0}
					onClick={() => readAllNotifications().catch((err: unknown) => setError(describe(err)))}
				>
					Mark all read
				</button>
				{desktopPermission.value === 'default' && (
					<button type="button" class="subtle" onClick={() => void askDesktopPermission()}>
						Enable desktop notifications
					</button>
				)}
			</div>
			<ErrorText error={error} />
			{list.length === 0 ? (
				<p class="muted">Nothing yet: mentions of you and direct messages show here.</p>
			) : (
				<ul class="notification-list">
					{list.map((note) => (
						<li key={note.id} class={note.read ? 'read' : 'unread'} data-notification-id={note.id}>
							<button type="button" class="notification-item" onClick={() => show(note)}>
								<span class="notification-title">
									{!note.read && <span class="visually-hidden">Unread: </span>}
									{describeNotification(note)}
								</span>
								<span class="notification-excerpt">{note.excerpt}</span>
								<time class="muted" dateTime={note.created_at}>
									{formatTime(note.created_at)}
								</time>
							</button>
						</li>
					))}
				</ul>
			)}
		</Dialog>
	);
}
