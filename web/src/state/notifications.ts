// The bell: our notifications in the open workspace (mentions, @channel/@here, direct
// messages), kept by the server. `notification:new` adds one on every tab of ours,
// `notification:read` clears on every tab what one of them read; muted channels come
// with `channel:muted`. The tab's title shows how many are unread.
//
// One tab of ours (the one holding the `roomler-notify` lock) plays the sound and shows the
// desktop notification, so several open tabs alert once; nothing alerts while our own
// presence is Do not disturb.
import { computed, effect, signal } from '@preact/signals';
import * as api from '../lib/api';
import { realtime } from '../lib/realtime';
import { navigate, paths } from '../lib/router';
import type { ChannelMuted, Id, NotificationNew, NotificationsRead, UserNotification } from '../lib/types';
import { activeChannelId } from './chat';
import { channelLabel, channels, displayName, myPresence, tenant } from './workspace';

export const notifications = signal<UserNotification[]>([]);
export const unreadNotifications = signal(0);
export const mutedChannels = signal<ReadonlySet<Id>>(new Set());
/** Whether the browser may show desktop notifications (asked from the bell). */
export const desktopPermission = signal<NotificationPermission | 'unsupported'>(
	typeof Notification === 'undefined' ? 'unsupported' : Notification.permission,
);

export async function loadNotifications(): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const [page, muted] = await Promise.all([api.listNotifications(open.id), api.listMuted(open.id)]);
	if (tenant.value?.id !== open.id) return;
	notifications.value = page.items;
	unreadNotifications.value = page.unread_count;
	mutedChannels.value = new Set(muted);
}

export function forgetNotifications(): void {
	notifications.value = [];
	unreadNotifications.value = 0;
	mutedChannels.value = new Set();
}

function applyRead({ tenant_id, notification_ids, unread_count }: NotificationsRead): void {
	if (tenant.value?.id !== tenant_id) return;
	const ids = new Set(notification_ids);
	notifications.value = notifications.value.map((n) => (ids.has(n.id) ? { ...n, read: true } : n));
	unreadNotifications.value = unread_count;
}

export async function readNotification(note: UserNotification): Promise<void> {
	if (note.read) return;
	applyRead(await api.readNotification(note.tenant_id, note.id));
}

export async function readAllNotifications(): Promise<void> {
	const open = tenant.value;
	if (open !== null) applyRead(await api.readAllNotifications(open.id));
}

export async function setMuted(cid: Id, muted: boolean): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	applyMuted(muted ? await api.muteChannel(open.id, cid) : await api.unmuteChannel(open.id, cid));
}

function applyMuted({ tenant_id, channel_id, muted }: ChannelMuted): void {
	if (tenant.value?.id !== tenant_id) return;
	const next = new Set(mutedChannels.value);
	if (muted) next.add(channel_id);
	else next.delete(channel_id);
	mutedChannels.value = next;
}

/** What a notification says, e.g. "Alice mentioned you in #general". */
export function describeNotification(note: UserNotification): string {
	const who = displayName(note.actor_id);
	const channel = channels.value.find((c) => c.id === note.channel_id);
	const where = channel ? channelLabel(channel) : 'a channel';
	switch (note.kind) {
		case 'mention':
			return `${who} mentioned you in ${where}`;
		case 'direct':
			return `${who} wrote to you`;
		case 'channel':
			return `${who} notified @channel in ${where}`;
		default:
			return `${who} notified @here in ${where}`;
	}
}

export async function askDesktopPermission(): Promise<void> {
	if (typeof Notification === 'undefined') return;
	desktopPermission.value = await Notification.requestPermission();
}

// --- alerting ---------------------------------------------------------------------------------

let leader = typeof navigator.locks === 'undefined';
if (!leader) {
	// Held for the tab's life; when the leading tab closes, the next one waiting takes over.
	void navigator.locks.request('roomler-notify', () => {
		leader = true;
		return new Promise<never>(() => undefined);
	});
}

let audio: AudioContext | null = null;

/** A short two-note chime, made here rather than fetched. */
function chime(): void {
	try {
		audio ??= new AudioContext();
		const now = audio.currentTime;
		for (const [offset, pitch] of [
			[0, 880],
			[0.12, 1320],
		] as const) {
			const tone = audio.createOscillator();
			const gain = audio.createGain();
			tone.frequency.value = pitch;
			gain.gain.setValueAtTime(0.12, now + offset);
			gain.gain.exponentialRampToValueAtTime(0.001, now + offset + 0.25);
			tone.connect(gain).connect(audio.destination);
			tone.start(now + offset);
			tone.stop(now + offset + 0.25);
		}
	} catch {
		// No audio output (or not allowed before a gesture): the bell still counts.
	}
}

function alert(note: UserNotification): void {
	if (!leader || myPresence.value === 'dnd') return;
	const onScreen = activeChannelId.value === note.channel_id && document.visibilityState === 'visible';
	if (onScreen) return;
	chime();
	if (desktopPermission.value !== 'granted') return;
	const shown = new Notification(describeNotification(note), { body: note.excerpt, tag: note.id });
	shown.onclick = () => {
		window.focus();
		navigate(paths.channel(note.tenant_id, note.channel_id));
	};
}

realtime.on<NotificationNew>('notification:new', ({ notification, unread_count }) => {
	if (tenant.value?.id !== notification.tenant_id) return;
	if (!notifications.value.some((n) => n.id === notification.id)) {
		notifications.value = [notification, ...notifications.value];
	}
	unreadNotifications.value = unread_count;
	alert(notification);
});

realtime.on<NotificationsRead>('notification:read', applyRead);

realtime.on<ChannelMuted>('channel:muted', applyMuted);

realtime.onReconnect(() => void loadNotifications().catch(() => undefined));

// --- the tab's title --------------------------------------------------------------------------

const BASE_TITLE = document.title;
const titled = computed(() => {
	const count = unreadNotifications.value;
	return count > 0 ? `(${count}) ${BASE_TITLE}` : BASE_TITLE;
});
effect(() => {
	document.title = titled.value;
});
