// Channel timelines, sending, typing indicators and unread markers.
//
// A timeline holds the newest messages of a channel, oldest first, and grows upward
// through `?before=`. Messages are keyed by id; our own message first appears as a
// pending copy keyed by its nonce and is replaced by the server's answer, and a copy
// that also arrives over the socket (another tab of ours) is recognised by id or nonce,
// so each message is shown once.
import { batch, signal } from '@preact/signals';
import * as api from '../lib/api';
import { realtime } from '../lib/realtime';
import { currentUser } from '../lib/session';
import type {
	Attachment,
	ChannelRead,
	Id,
	Message,
	MessageDeleted,
	MessagePinned,
	MessageReactions,
	MessageThread,
	TypingEvent,
} from '../lib/types';
import { channels, refreshChannels, tenant } from './workspace';

export const PAGE_SIZE = 50;
/** The server's limit on a message's `content`, in characters (code points, as Python counts). */
export const MESSAGE_MAX_CHARS = 10_000;

/** Why `content` cannot be sent as it is, or null: the limit is told before sending, never cut. */
export function contentTooLong(content: string): string | null {
	const length = [...content].length;
	if (length <= MESSAGE_MAX_CHARS) return null;
	const over = length - MESSAGE_MAX_CHARS;
	return `Too long: ${length.toLocaleString('en')} characters, the limit is ${MESSAGE_MAX_CHARS.toLocaleString('en')}. Remove ${over.toLocaleString('en')} to send.`;
}
// How many pages back a catch-up after a reconnect may go looking for the last known message.
const CATCH_UP_PAGES = 4;
// Re-announce typing this often while keys are being pressed (the server forgets after 8 s).
const TYPING_RENEW_MS = 3_000;
// Typing stops being announced after this long without a key.
const TYPING_IDLE_MS = 4_000;
// Forget a typist we heard nothing more from (the server's own timeout is 8 s).
const TYPING_FORGET_MS = 10_000;

export type SendState = 'sending' | 'failed';

export interface TimelineItem extends Message {
	/** Set while our own message is not yet stored: the id is then `local:<nonce>`. */
	sendState?: SendState;
}

export interface Timeline {
	items: TimelineItem[];
	loaded: boolean;
	hasOlder: boolean;
	loadingOlder: boolean;
	error: string | null;
}

const EMPTY: Timeline = { items: [], loaded: false, hasOlder: false, loadingOlder: false, error: null };

export const timelines = signal<Readonly<Record<Id, Timeline>>>({});
export const activeChannelId = signal<Id | null>(null);
/** Unread messages by others in a channel, and how many of them name us (`@username`). */
export interface UnreadCount {
	count: number;
	mentions: number;
}
/** Channels with messages we have not seen (a followed thread's reply counts no message). */
export const unread = signal<ReadonlyMap<Id, UnreadCount>>(new Map());
/** channel id → user id → when to forget them (epoch ms). */
export const typists = signal<Readonly<Record<Id, Readonly<Record<Id, number>>>>>({});

export function timelineOf(cid: Id): Timeline {
	return timelines.value[cid] ?? EMPTY;
}

function setTimeline(cid: Id, change: (t: Timeline) => Timeline): void {
	timelines.value = { ...timelines.value, [cid]: change(timelineOf(cid)) };
}

function order(a: Message, b: Message): number {
	const delta = Date.parse(a.created_at) - Date.parse(b.created_at);
	if (delta !== 0) return delta;
	return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Insert or replace `message`, matching a pending copy by nonce. */
function merge(items: TimelineItem[], message: Message): TimelineItem[] {
	const rest = items.filter(
		(item) =>
			item.id !== message.id &&
			!(item.sendState !== undefined && message.nonce !== null && item.nonce === message.nonce),
	);
	const stored = rest.filter((item) => item.sendState === undefined);
	const pending = rest.filter((item) => item.sendState !== undefined);
	const index = stored.findIndex((item) => order(message, item) < 0);
	if (index === -1) stored.push(message);
	else stored.splice(index, 0, message);
	return [...stored, ...pending];
}

// --- seen and unread --------------------------------------------------------------------------
//
// The server keeps our read marker per channel (`PUT .../read`) and counts what is unread
// after it (`GET .../unread`); `channel:read` tells every tab of ours when one of them read,
// so they all clear the channel. Between those, a message arriving unseen counts up here.

/** The marker we last asked the server for, per channel (to ask once per message). */
const markedRead = new Map<Id, Id>();

function isMention(content: string): boolean {
	const username = currentUser.value?.username;
	if (!username) return false;
	const name = username.replace(/[.\-]/g, '\\$&');
	return new RegExp(`(?<![A-Za-z0-9_.@-])@${name}(?![A-Za-z0-9_-])(?!\\.[A-Za-z0-9_-])`, 'i').test(content);
}

function markSeen(cid: Id, messageId: Id): void {
	const open = tenant.value;
	if (open === null || messageId.startsWith('local:') || markedRead.get(cid) === messageId) return;
	markedRead.set(cid, messageId);
	api
		.markRead(open.id, cid, messageId)
		.then(applyRead)
		.catch(() => markedRead.delete(cid));
}

function setUnread(cid: Id, value: boolean, counts: UnreadCount = { count: 0, mentions: 0 }): void {
	const current = unread.value.get(cid);
	if (!value && current === undefined) return;
	if (value && current?.count === counts.count && current.mentions === counts.mentions) return;
	const next = new Map(unread.value);
	if (value) next.set(cid, counts);
	else next.delete(cid);
	unread.value = next;
}

/** Whether `cid` is on screen, so what arrives in it is read. */
function looking(cid: Id): boolean {
	return activeChannelId.value === cid && document.visibilityState === 'visible';
}

/** The server's word on a channel's read state (an answer or `channel:read`). */
function applyRead(state: ChannelRead): void {
	const open = tenant.value;
	if (open === null || (state.tenant_id !== undefined && state.tenant_id !== open.id)) return;
	if (state.message_id !== null) markedRead.set(state.channel_id, state.message_id);
	if (state.unread_count === 0 || looking(state.channel_id)) setUnread(state.channel_id, false);
	else setUnread(state.channel_id, true, { count: state.unread_count, mentions: state.mention_count });
}

function newestStored(cid: Id): Message | undefined {
	return timelineOf(cid).items.findLast((item) => item.sendState === undefined);
}

function noteNewest(cid: Id): void {
	const newest = newestStored(cid);
	if (newest !== undefined) markSeen(cid, newest.id);
}

/** Take every channel's unread and mention counts from the server. */
export async function findUnread(): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const states = await api.listUnread(open.id);
	if (tenant.value?.id !== open.id) return;
	batch(() => {
		const listed = new Set(states.map((state) => state.channel_id));
		for (const cid of unread.value.keys()) if (!listed.has(cid)) setUnread(cid, false);
		for (const state of states) applyRead(state);
	});
}

// --- timelines ------------------------------------------------------------------------------

/** Show channel `cid`: load its newest page the first time, and mark it read. */
export async function openChannel(cid: Id): Promise<void> {
	if (activeChannelId.value !== cid) stopTyping();
	activeChannelId.value = cid;
	setUnread(cid, false);
	void loadPins(cid).catch(() => undefined);
	if (!timelineOf(cid).loaded) await loadNewestOnce(cid);
	noteNewest(cid);
}

/** The first page's load of each channel in flight: opening a channel and jumping to one
 * of its messages at the same moment share it. */
const loadingNewest = new Map<Id, Promise<void>>();

function loadNewestOnce(cid: Id): Promise<void> {
	let loading = loadingNewest.get(cid);
	if (loading === undefined) {
		loading = loadNewest(cid).finally(() => loadingNewest.delete(cid));
		loadingNewest.set(cid, loading);
	}
	return loading;
}

// How many pages back a jump to an older message (from search) may load to find it.
const REVEAL_PAGES = 40;

/** Load channel `cid`'s history back to message `mid`; whether it is now in the timeline. */
export async function revealMessage(cid: Id, mid: Id): Promise<boolean> {
	const has = () => timelineOf(cid).items.some((item) => item.id === mid);
	if (!timelineOf(cid).loaded) await loadNewestOnce(cid);
	for (let page = 0; page < REVEAL_PAGES && !has(); page += 1) {
		const current = timelineOf(cid);
		if (!current.hasOlder || current.error !== null) break;
		if (current.loadingOlder) await new Promise((resolve) => setTimeout(resolve, 50));
		else await loadOlder(cid);
	}
	return has();
}

export function closeChannel(): void {
	stopTyping();
	activeChannelId.value = null;
}

/** Messages that arrived over the socket while a channel's first page was loading. */
const arrivedWhileLoading = new Map<Id, Message[]>();

async function loadNewest(cid: Id): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	arrivedWhileLoading.set(cid, []);
	try {
		const page = await api.listMessages(open.id, cid, PAGE_SIZE);
		// The page may have been read before a message that reached us meanwhile.
		const arrived = arrivedWhileLoading.get(cid) ?? [];
		setTimeline(cid, (t) => ({
			...t,
			items: arrived.reduce(
				merge,
				[...page.items.reverse(), ...t.items.filter((i) => i.sendState !== undefined)] as TimelineItem[],
			),
			loaded: true,
			hasOlder: page.total > page.items.length,
			error: null,
		}));
	} catch (error) {
		setTimeline(cid, (t) => ({ ...t, loaded: true, error: describe(error) }));
	} finally {
		arrivedWhileLoading.delete(cid);
	}
}

/** Load the page before the oldest message we have (infinite scroll upward). */
export async function loadOlder(cid: Id): Promise<void> {
	const open = tenant.value;
	const current = timelineOf(cid);
	const oldest = current.items.find((item) => item.sendState === undefined);
	if (open === null || !current.hasOlder || current.loadingOlder || oldest === undefined) return;
	setTimeline(cid, (t) => ({ ...t, loadingOlder: true }));
	try {
		const page = await api.listMessages(open.id, cid, PAGE_SIZE, oldest.id);
		setTimeline(cid, (t) => ({
			...t,
			items: [...page.items.reverse(), ...t.items],
			hasOlder: page.total > page.items.length,
			loadingOlder: false,
		}));
	} catch (error) {
		setTimeline(cid, (t) => ({ ...t, loadingOlder: false, error: describe(error) }));
	}
}

/**
 * After a reconnect: fetch the newest messages until they reach one we already had, then
 * take the server's version of that whole stretch (edits and deletions included).
 */
async function catchUp(cid: Id): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const known = new Set(timelineOf(cid).items.map((item) => item.id));
	const fetched: Message[] = [];
	let before: Id | undefined;
	let reachedStart = false;
	for (let round = 0; round < CATCH_UP_PAGES; round += 1) {
		const page = await api.listMessages(open.id, cid, PAGE_SIZE, before);
		fetched.push(...page.items);
		if (page.items.length < PAGE_SIZE || page.total <= page.items.length) {
			reachedStart = true;
			break;
		}
		if (page.items.some((m) => known.has(m.id))) break;
		before = page.items[page.items.length - 1]!.id;
	}
	fetched.reverse();
	const oldest = fetched[0];
	const overlaps = fetched.some((m) => known.has(m.id));
	setTimeline(cid, (t) => {
		const pending = t.items.filter((i) => i.sendState !== undefined);
		// What we had before the fetched stretch stays only if the two join up without a gap.
		const older =
			overlaps && !reachedStart && oldest !== undefined
				? t.items.filter((i) => i.sendState === undefined && order(i, oldest) < 0)
				: [];
		const stored = [...older, ...fetched];
		const nonces = new Set(stored.map((m) => m.nonce));
		const unsent = pending.filter((p) => !nonces.has(p.nonce));
		return { ...t, items: [...stored, ...unsent], hasOlder: !reachedStart, error: null };
	});
}

export async function catchUpAll(): Promise<void> {
	const active = activeChannelId.value;
	// Timelines not on screen are dropped and loaded afresh when opened.
	timelines.value = active !== null && timelines.value[active] ? { [active]: timelines.value[active] } : {};
	pins.value = {};
	if (active !== null) {
		await catchUp(active);
		noteNewest(active);
		await loadPins(active);
	}
	await findUnread();
	await retryFailed();
}

// --- sending ----------------------------------------------------------------------------------

function newNonce(): string {
	return crypto.randomUUID().replaceAll('-', '');
}

export async function sendMessage(
	cid: Id,
	content: string,
	replyTo: Id | null,
	attachments: Attachment[] = [],
): Promise<void> {
	const user = currentUser.value;
	if (user === null) return;
	const nonce = newNonce();
	const now = new Date().toISOString();
	const local: TimelineItem = {
		id: `local:${nonce}`,
		channel_id: cid,
		author_id: user.id,
		content,
		message_type: replyTo ? 'reply' : 'default',
		thread_id: null,
		referenced_message_id: replyTo,
		reply_count: 0,
		last_reply_at: null,
		is_edited: false,
		is_pinned: false,
		pinned_at: null,
		pinned_by: null,
		nonce,
		reactions: [],
		attachments,
		created_at: now,
		updated_at: now,
		sendState: 'sending',
	};
	typingSentAt = 0; // the server ends our indicator when the message is stored
	clearIdleTimer();
	setTimeline(cid, (t) => ({ ...t, items: [...t.items, local] }));
	await deliver(cid, local);
}

async function deliver(cid: Id, local: TimelineItem): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	try {
		const stored = await api.postMessage(
			open.id,
			cid,
			{
				content: local.content,
				nonce: local.nonce!,
				referenced_message_id: local.referenced_message_id,
				attachment_ids: local.attachments.map((a) => a.id),
			},
			realtime.connectionId,
		);
		setTimeline(cid, (t) => ({ ...t, items: merge(t.items, stored) }));
		if (activeChannelId.value === cid) markSeen(cid, stored.id);
	} catch (error) {
		const sendState: SendState = 'failed';
		setTimeline(cid, (t) => ({
			...t,
			items: t.items.map((i) => (i.id === local.id ? { ...i, sendState } : i)),
			error: error instanceof api.NetworkError ? null : describe(error),
		}));
	}
}

export async function retryMessage(cid: Id, localId: Id): Promise<void> {
	const item = timelineOf(cid).items.find((i) => i.id === localId);
	if (item === undefined || item.sendState !== 'failed') return;
	setTimeline(cid, (t) => ({
		...t,
		items: t.items.map((i) => (i.id === localId ? { ...i, sendState: 'sending' as SendState } : i)),
	}));
	await deliver(cid, item);
}

export function discardMessage(cid: Id, localId: Id): void {
	setTimeline(cid, (t) => ({ ...t, items: t.items.filter((i) => i.id !== localId) }));
}

async function retryFailed(): Promise<void> {
	for (const [cid, timeline] of Object.entries(timelines.value)) {
		for (const item of timeline.items) {
			if (item.sendState === 'failed') await retryMessage(cid, item.id);
		}
	}
}

export async function editMessage(cid: Id, mid: Id, content: string): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const updated = await api.editMessage(open.id, cid, mid, content);
	// A thread reply is not part of the timeline: the thread panel hears `message:update`.
	if (updated.thread_id === null) setTimeline(cid, (t) => ({ ...t, items: merge(t.items, updated) }));
}

export async function deleteMessage(cid: Id, mid: Id): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	await api.deleteMessage(open.id, cid, mid);
	setTimeline(cid, (t) => ({ ...t, items: t.items.filter((i) => i.id !== mid) }));
	forgetPin(cid, mid);
}

// --- reactions ----------------------------------------------------------------------------

/** Put a message's reaction summary (an answer or a `message:reaction`) where it is shown. */
function applyReactions(change: MessageReactions): void {
	const { channel_id: cid, message_id: mid, reactions } = change;
	const patch = (items: TimelineItem[]) =>
		items.some((i) => i.id === mid) ? items.map((i) => (i.id === mid ? { ...i, reactions } : i)) : items;
	if (timelines.value[cid]?.loaded) setTimeline(cid, (t) => ({ ...t, items: patch(t.items) }));
	for (const listener of messagePatchListeners) listener(mid, { reactions });
}

/** Add our `emoji` to a message, or take it back if we already gave it. */
export async function toggleReaction(message: Message, emoji: string): Promise<void> {
	const open = tenant.value;
	const me = currentUser.value?.id;
	if (open === null || me === undefined) return;
	const given = message.reactions.some((r) => r.emoji === emoji && r.user_ids.includes(me));
	const change = given
		? await api.removeReaction(open.id, message.channel_id, message.id, emoji)
		: await api.addReaction(open.id, message.channel_id, message.id, emoji);
	applyReactions(change);
}

// --- pins ---------------------------------------------------------------------------------

/** channel id → its pinned messages, most recently pinned first (loaded when it is opened). */
export const pins = signal<Readonly<Record<Id, Message[]>>>({});

export async function loadPins(cid: Id): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const list = await api.listPins(open.id, cid);
	pins.value = { ...pins.value, [cid]: list };
}

function applyPinned(message: Message): void {
	const cid = message.channel_id;
	const patch: MessagePatch = {
		is_pinned: message.is_pinned,
		pinned_at: message.pinned_at,
		pinned_by: message.pinned_by,
	};
	if (timelines.value[cid]?.loaded) {
		setTimeline(cid, (t) => ({
			...t,
			items: t.items.map((i) => (i.id === message.id ? { ...i, ...patch } : i)),
		}));
	}
	for (const listener of messagePatchListeners) listener(message.id, patch);
	const list = pins.value[cid];
	if (list === undefined) return;
	const rest = list.filter((m) => m.id !== message.id);
	pins.value = { ...pins.value, [cid]: message.is_pinned ? [message, ...rest] : rest };
}

export async function togglePin(message: Message): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const changed = message.is_pinned
		? await api.unpinMessage(open.id, message.channel_id, message.id)
		: await api.pinMessage(open.id, message.channel_id, message.id);
	applyPinned(changed);
}

/** Views that hold messages outside the timelines (the thread panel) hear of changes here. */
export type MessagePatch = Partial<
	Pick<Message, 'reactions' | 'is_pinned' | 'pinned_at' | 'pinned_by' | 'reply_count' | 'last_reply_at'>
>;

/** Change a message of a timeline in place (it stays where it is). */
export function patchMessage(cid: Id, mid: Id, patch: MessagePatch): void {
	if (timelines.value[cid]?.items.some((i) => i.id === mid)) {
		setTimeline(cid, (t) => ({ ...t, items: t.items.map((i) => (i.id === mid ? { ...i, ...patch } : i)) }));
	}
	for (const listener of messagePatchListeners) listener(mid, patch);
}

/** A reply in a thread we follow arrived while we were not looking at the channel. */
export function noteFollowedReply(cid: Id): void {
	if (!looking(cid)) setUnread(cid, true, unread.value.get(cid));
}
export const messagePatchListeners = new Set<(mid: Id, patch: MessagePatch) => void>();

export function describe(error: unknown): string {
	if (error instanceof api.ApiError || error instanceof api.NetworkError) return error.message;
	return error instanceof Error ? error.message : String(error);
}

// --- our typing -------------------------------------------------------------------------------

let typingChannel: Id | null = null;
let typingSentAt = 0;
let idleTimer: number | null = null;

function clearIdleTimer(): void {
	if (idleTimer !== null) window.clearTimeout(idleTimer);
	idleTimer = null;
}

/** A key was pressed in the composer of `cid`. */
export function noteTyping(cid: Id): void {
	if (typingChannel !== cid) stopTyping();
	typingChannel = cid;
	const now = Date.now();
	if (now - typingSentAt > TYPING_RENEW_MS && realtime.send('typing:start', { channel_id: cid })) {
		typingSentAt = now;
	}
	clearIdleTimer();
	idleTimer = window.setTimeout(stopTyping, TYPING_IDLE_MS);
}

/** The composer was emptied, left idle, or we moved away. */
export function stopTyping(): void {
	clearIdleTimer();
	if (typingChannel !== null && typingSentAt !== 0) {
		realtime.send('typing:stop', { channel_id: typingChannel });
	}
	typingSentAt = 0;
	typingChannel = null;
}

// --- others' typing -------------------------------------------------------------------------

function setTypist(cid: Id, userId: Id, until: number | null): void {
	const inChannel = { ...(typists.value[cid] ?? {}) };
	if (until === null) {
		if (!(userId in inChannel)) return;
		delete inChannel[userId];
	} else {
		inChannel[userId] = until;
		window.setTimeout(() => {
			if ((typists.value[cid]?.[userId] ?? 0) <= Date.now()) setTypist(cid, userId, null);
		}, TYPING_FORGET_MS + 50);
	}
	typists.value = { ...typists.value, [cid]: inChannel };
}

export function typistsIn(cid: Id): Id[] {
	return Object.keys(typists.value[cid] ?? {});
}

// --- events -----------------------------------------------------------------------------------

function received(message: Message): void {
	const cid = message.channel_id;
	batch(() => {
		setTypist(cid, message.author_id, null);
		// Thread replies are not part of the channel's timeline (nor of its history).
		if (message.thread_id !== null) return;
		if (timelines.value[cid]?.loaded) setTimeline(cid, (t) => ({ ...t, items: merge(t.items, message) }));
		else arrivedWhileLoading.get(cid)?.push(message);
		if (looking(cid)) markSeen(cid, message.id);
		else if (message.author_id !== currentUser.value?.id) {
			const counts = unread.value.get(cid) ?? { count: 0, mentions: 0 };
			setUnread(cid, true, {
				count: counts.count + 1,
				mentions: counts.mentions + (isMention(message.content) ? 1 : 0),
			});
		}
	});
	if (!channels.value.some((c) => c.id === cid) && !foreignChannels.has(cid)) {
		// Someone added us to a channel here, or it is another workspace's: look once.
		foreignChannels.add(cid);
		void refreshChannels().catch(() => undefined);
	}
}

/** Channels of messages that were not in the open workspace's list when we looked. */
const foreignChannels = new Set<Id>();

realtime.on<Message>('message:create', received);

function forgetPin(cid: Id, mid: Id): void {
	const list = pins.value[cid];
	if (list?.some((m) => m.id === mid)) pins.value = { ...pins.value, [cid]: list.filter((m) => m.id !== mid) };
}

realtime.on<Message>('message:update', (message) => {
	if (message.thread_id !== null) return; // the thread panel's (state/threads.ts)
	const list = pins.value[message.channel_id];
	if (list?.some((m) => m.id === message.id)) {
		pins.value = {
			...pins.value,
			[message.channel_id]: list.map((m) => (m.id === message.id ? message : m)),
		};
	}
	if (timelines.value[message.channel_id]?.loaded) {
		setTimeline(message.channel_id, (t) => ({ ...t, items: merge(t.items, message) }));
	}
});

realtime.on<MessageDeleted>('message:delete', ({ message_id, channel_id }) => {
	forgetPin(channel_id, message_id);
	if (timelines.value[channel_id]?.loaded) {
		setTimeline(channel_id, (t) => ({ ...t, items: t.items.filter((i) => i.id !== message_id) }));
	}
});

realtime.on<MessageReactions>('message:reaction', applyReactions);

realtime.on<MessagePinned>('message:pinned', ({ message }) => applyPinned(message));

realtime.on<MessageThread>('message:thread', ({ channel_id, message_id, reply_count, last_reply_at }) =>
	patchMessage(channel_id, message_id, { reply_count, last_reply_at }),
);

realtime.on<ChannelRead>('channel:read', applyRead);

realtime.on<TypingEvent>('typing:start', ({ channel_id, user_id }) => {
	if (user_id !== currentUser.value?.id) setTypist(channel_id, user_id, Date.now() + TYPING_FORGET_MS);
});

realtime.on<TypingEvent>('typing:stop', ({ channel_id, user_id }) => setTypist(channel_id, user_id, null));

realtime.onReconnect(() => {
	typists.value = {};
	void catchUpAll().catch(() => undefined);
});

document.addEventListener('visibilitychange', () => {
	const cid = activeChannelId.value;
	if (cid !== null && document.visibilityState === 'visible') {
		setUnread(cid, false);
		noteNewest(cid);
	}
});
