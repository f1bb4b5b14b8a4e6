// Threads: the replies of a thread open in the panel, whether we follow it, and new
// replies in the threads we follow that we have not looked at.
import { signal } from '@preact/signals';
import * as api from '../lib/api';
import { realtime } from '../lib/realtime';
import { currentUser } from '../lib/session';
import type { Id, Message, MessageDeleted, ThreadReply } from '../lib/types';
import { messagePatchListeners, noteFollowedReply } from './chat';
import { tenant } from './workspace';

export interface Thread {
	channelId: Id;
	replies: Message[];
	loaded: boolean;
	following: boolean;
}

/** root id → its thread, for the threads opened in this session. */
export const threads = signal<Readonly<Record<Id, Thread>>>({});
/** The thread shown in the panel, if any. */
export const openThreadId = signal<Id | null>(null);
/** Roots of followed threads with replies we have not seen. */
export const unseenThreads = signal<ReadonlySet<Id>>(new Set());

function setThread(rootId: Id, change: (t: Thread) => Thread): void {
	const current = threads.value[rootId];
	if (current === undefined) return;
	threads.value = { ...threads.value, [rootId]: change(current) };
}

function seen(rootId: Id): void {
	if (!unseenThreads.value.has(rootId)) return;
	const next = new Set(unseenThreads.value);
	next.delete(rootId);
	unseenThreads.value = next;
}

export async function openThread(cid: Id, rootId: Id): Promise<void> {
	openThreadId.value = rootId;
	seen(rootId);
	const open = tenant.value;
	if (open === null) return;
	if (threads.value[rootId] === undefined) {
		threads.value = { ...threads.value, [rootId]: { channelId: cid, replies: [], loaded: false, following: false } };
	}
	const [replies, follow] = await Promise.all([
		api.listThread(open.id, cid, rootId),
		api.getFollowing(open.id, cid, rootId),
	]);
	setThread(rootId, (t) => ({ ...t, replies: mergeAll(replies, t.replies), loaded: true, following: follow.following }));
}

export function closeThread(): void {
	openThreadId.value = null;
}

function mergeAll(fetched: Message[], arrived: Message[]): Message[] {
	const byId = new Map(fetched.map((m) => [m.id, m]));
	for (const m of arrived) byId.set(m.id, m);
	return [...byId.values()].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at) || (a.id < b.id ? -1 : 1));
}

export async function sendReply(cid: Id, rootId: Id, content: string): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const nonce = crypto.randomUUID().replaceAll('-', '');
	const stored = await api.postMessage(
		open.id,
		cid,
		{ content, nonce, referenced_message_id: null, thread_id: rootId },
		realtime.connectionId,
	);
	// Replying makes us follow the thread.
	setThread(rootId, (t) => ({ ...t, replies: mergeAll(t.replies, [stored]), following: true }));
}

export async function setFollowing(cid: Id, rootId: Id, follow: boolean): Promise<void> {
	const open = tenant.value;
	if (open === null) return;
	const answer = follow
		? await api.followThread(open.id, cid, rootId)
		: await api.unfollowThread(open.id, cid, rootId);
	setThread(rootId, (t) => ({ ...t, following: answer.following }));
}

export function editReply(message: Message): void {
	if (message.thread_id !== null) setThread(message.thread_id, (t) => ({ ...t, replies: mergeAll(t.replies, [message]) }));
}

export function removeReply(rootId: Id, mid: Id): void {
	setThread(rootId, (t) => ({ ...t, replies: t.replies.filter((m) => m.id !== mid) }));
}

realtime.on<Message>('message:create', (message) => {
	if (message.thread_id !== null) editReply(message);
});

realtime.on<Message>('message:update', editReply);

realtime.on<MessageDeleted>('message:delete', ({ thread_id, message_id }) => {
	if (thread_id !== null) removeReply(thread_id, message_id);
	if (openThreadId.value === message_id) openThreadId.value = null;
});

realtime.on<ThreadReply>('thread:reply', ({ thread_id, channel_id, message }) => {
	if (message.author_id === currentUser.value?.id) return;
	const looking = openThreadId.value === thread_id && document.visibilityState === 'visible';
	if (looking) return;
	unseenThreads.value = new Set([...unseenThreads.value, thread_id]);
	noteFollowedReply(channel_id);
});

messagePatchListeners.add((mid, patch) => {
	for (const [rootId, thread] of Object.entries(threads.value)) {
		if (thread.replies.some((m) => m.id === mid)) {
			setThread(rootId, (t) => ({ ...t, replies: t.replies.map((m) => (m.id === mid ? { ...m, ...patch } : m)) }));
		}
	}
});

realtime.onReconnect(() => {
	// Threads not on screen are loaded afresh when opened; the open one now.
	const open = openThreadId.value;
	const thread = open !== null ? threads.value[open] : undefined;
	threads.value = {};
	if (open !== null && thread !== undefined) void openThread(thread.channelId, open).catch(() => undefined);
});
