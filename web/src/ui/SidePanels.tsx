// The panel beside a channel's timeline: its pinned messages (and a thread, see ThreadPanel).
import type { TargetedKeyboardEvent } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Channel, Id } from '../lib/types';
import { contentTooLong, describe, pins, timelineOf, togglePin } from '../state/chat';
import { sendReply, setFollowing, threads } from '../state/threads';
import { canWrite, channelLabel, displayName } from '../state/workspace';
import { ErrorText, formatDay, formatTime } from './common';
import { MessageItem } from './MessageItem';

/** Scroll the timeline to a message and flash it; false if it is not loaded. */
export function jumpToMessage(mid: Id): boolean {
	const row = document.querySelector<HTMLElement>(`.timeline [data-message-id="${mid}"]`);
	if (row === null) return false;
	row.scrollIntoView({ block: 'center' });
	row.classList.add('flash');
	window.setTimeout(() => row.classList.remove('flash'), 1600);
	return true;
}

export function PinsPanel({ channel, onClose }: { channel: Channel; onClose: () => void }) {
	const list = pins.value[channel.id];
	const [error, setError] = useState<string | null>(null);
	useEffect(() => setError(null), [channel.id]);
	return (
		<aside class="side-panel" aria-label="Pinned messages">
			<header class="side-panel-header">
				<h2>Pinned messages</h2>
				<button type="button" class="icon-button" aria-label="Close pinned messages" onClick={onClose}>
					×
				</button>
			</header>
			<ErrorText error={error} />
			{list === undefined && <p class="muted center">Loading…</p>}
			{list?.length === 0 && <p class="muted side-panel-empty">Nothing is pinned in {channelLabel(channel)} yet.</p>}
			<ol class="pin-list">
				{list?.map((message) => (
					<li key={message.id} class="pin" data-message-id={message.id}>
						<p class="message-meta">
							<strong class="author">{displayName(message.author_id)}</strong>
							<time dateTime={message.created_at}>
								{formatDay(message.created_at)} {formatTime(message.created_at)}
							</time>
						</p>
						<p class="pin-content">{message.content}</p>
						<p class="pin-actions">
							{message.thread_id === null && (
								<button
									type="button"
									class="link-button"
									onClick={() => {
										if (!jumpToMessage(message.id)) setError('That message is further back: scroll up to load it.');
									}}
								>
									Jump
								</button>
							)}
							{canWrite(channel) && (
								<button
									type="button"
									class="link-button"
									onClick={() => togglePin(message).catch((err: unknown) => setError(describe(err)))}
								>
									Unpin
								</button>
							)}
						</p>
					</li>
				))}
			</ol>
		</aside>
	);
}

export function ThreadPanel({ channel, rootId, onClose }: { channel: Channel; rootId: Id; onClose: () => void }) {
	const thread = threads.value[rootId];
	const root = timelineOf(channel.id).items.find((m) => m.id === rootId);
	const [error, setError] = useState<string | null>(null);
	const list = useRef<HTMLOListElement>(null);
	const count = thread?.replies.length ?? 0;

	useEffect(() => {
		const box = list.current;
		if (box) box.scrollTop = box.scrollHeight;
	}, [count, rootId]);

	const toggleFollow = () => {
		if (thread === undefined) return;
		setFollowing(channel.id, rootId, !thread.following).catch((err: unknown) => setError(describe(err)));
	};

	return (
		<aside class="side-panel thread-panel" aria-label="Thread">
			<header class="side-panel-header">
				<h2>Thread</h2>
				<span class="header-actions">
					{channel.is_member && thread?.loaded && (
						<button type="button" class="subtle" aria-pressed={thread.following} onClick={toggleFollow}>
							{thread.following ? 'Following' : 'Follow'}
						</button>
					)}
					<button type="button" class="icon-button" aria-label="Close thread" onClick={onClose}>
						×
					</button>
				</span>
			</header>
			<ErrorText error={error} />
			<ol class="message-list thread-list" ref={list}>
				{root && <MessageItem message={root} quoted={null} leading onReply={() => undefined} canReact={canWrite(channel)} />}
				<li class="thread-divider muted" role="separator">
					{count === 1 ? '1 reply' : `${count} replies`}
				</li>
				{thread?.loaded === false && <li class="muted center">Loading replies…</li>}
				{thread?.replies.map((reply) => (
					<MessageItem key={reply.id} message={reply} quoted={null} leading onReply={() => undefined} canReact={canWrite(channel)} />
				))}
			</ol>
			{canWrite(channel) && <ThreadComposer channel={channel} rootId={rootId} onError={setError} />}
		</aside>
	);
}

function ThreadComposer(props: { channel: Channel; rootId: Id; onError: (error: string | null) => void }) {
	const [text, setText] = useState('');
	const [sending, setSending] = useState(false);
	const tooLong = contentTooLong(text.trim());

	const send = async () => {
		const content = text.trim();
		if (content === '' || tooLong !== null || sending) return;
		setSending(true);
		props.onError(null);
		try {
			await sendReply(props.channel.id, props.rootId, content);
			setText('');
		} catch (err) {
			props.onError(describe(err));
		} finally {
			setSending(false);
		}
	};

	const onKeyDown = (event: TargetedKeyboardEvent<HTMLTextAreaElement>) => {
		if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
			event.preventDefault();
			void send();
		}
	};

	return (
		<form
			class="composer thread-composer"
			onSubmit={(event) => {
				event.preventDefault();
				void send();
			}}
		>
			<div class="composer-row">
				<label class="visually-hidden" for="thread-input">
					Reply in thread
				</label>
				<textarea
					id="thread-input"
					rows={1}
					placeholder="Reply…"
					value={text}
					aria-invalid={tooLong !== null}
					onInput={(event) => setText(event.currentTarget.value)}
					onKeyDown={onKeyDown}
				/>
				<button type="submit" class="primary" disabled={text.trim() === '' || tooLong !== null || sending}>
					Reply
				</button>
			</div>
			{tooLong !== null && (
				<p class="error-text" role="alert">
					{tooLong}
				</p>
			)}
		</form>
	);
}
