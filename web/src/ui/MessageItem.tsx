// One message of a timeline: author, time, content, reply quote, and its actions.
import type { TargetedKeyboardEvent } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { Id } from '../lib/types';
import { currentUser } from '../lib/session';
import {
	contentTooLong,
	deleteMessage,
	describe,
	discardMessage,
	editMessage,
	retryMessage,
	togglePin,
	type TimelineItem,
} from '../state/chat';
import { canManageMembers, channels, displayName } from '../state/workspace';
import { avatarOf } from '../state/profile';
import { Avatar, ErrorText, formatTime } from './common';
import { MessageText } from './MessageText';
import { AttachmentList } from './Attachments';
import { ReactButton, ReactionBar } from './Reactions';

interface Props {
	message: TimelineItem;
	/** The message it replies to, if it is in the timeline. */
	quoted: TimelineItem | null;
	/** The first of a run by the same author: show the avatar and the name. */
	leading: boolean;
	onReply: (id: Id) => void;
	/** Whether we may react (we are a member of the channel). */
	canReact?: boolean;
	/** Open this message's thread; absent inside the thread panel. */
	onOpenThread?: (id: Id) => void;
	/** New replies in this thread, which we follow, that we have not seen. */
	unseenReplies?: boolean;
	/** The message a search result jumped to: highlighted. */
	focused?: boolean;
}

export function MessageItem(props: Props) {
	const { message, quoted, leading, onReply, canReact = true, onOpenThread } = props;
	const [editing, setEditing] = useState(false);
	const [confirmDelete, setConfirmDelete] = useState(false);
	const [error, setError] = useState<string | null>(null);
	const own = message.author_id === currentUser.value?.id;
	// An archived channel is read-only: nobody edits or deletes in it.
	const archived = channels.value.find((c) => c.id === message.channel_id)?.archived === true;
	const author = displayName(message.author_id);
	const pending = message.sendState !== undefined;

	const remove = async () => {
		try {
			await deleteMessage(message.channel_id, message.id);
		} catch (err) {
			setError(describe(err));
			setConfirmDelete(false);
		}
	};

	return (
		<li
			class={`message${leading ? ' leading' : ''}${pending ? ` ${message.sendState}` : ''}${props.focused ? ' focused' : ''}`}
			data-message-id={message.id}
			data-focused={props.focused ? 'true' : undefined}
			aria-label={`${author}: ${message.content}`}
		>
			<div class="message-gutter">
				{leading ? <Avatar name={author} id={message.author_id} src={avatarOf(message.author_id)} /> : <time class="hover-time">{formatTime(message.created_at)}</time>}
			</div>
			<div class="message-body">
				{message.referenced_message_id && (
					<p class="reply-quote">
						↪{' '}
						{quoted ? (
							<>
								<strong>{displayName(quoted.author_id)}</strong> {quoted.content.slice(0, 120)}
							</>
						) : (
							<em>an earlier message</em>
						)}
					</p>
				)}
				{message.is_pinned && (
					<p class="pinned-note">
						<span aria-hidden="true">📌</span> Pinned
						{message.pinned_by ? ` by ${displayName(message.pinned_by)}` : ''}
					</p>
				)}
				{leading && (
					<p class="message-meta">
						<strong class="author">{author}</strong>
						<time dateTime={message.created_at}>{formatTime(message.created_at)}</time>
					</p>
				)}
				{editing ? (
					<EditBox message={message} onDone={() => setEditing(false)} />
				) : (
					message.content !== '' && (
						<p class="message-content">
							<MessageText content={message.content} />
							{message.is_edited && <span class="edited"> (edited)</span>}
						</p>
					)
				)}
				<AttachmentList files={message.attachments ?? []} />
				{!pending && <ReactionBar message={message} canReact={canReact} />}
				{onOpenThread && message.reply_count > 0 && (
					<button
						type="button"
						class={`thread-summary link-button${props.unseenReplies ? ' unseen' : ''}`}
						onClick={() => onOpenThread(message.id)}
					>
						{message.reply_count === 1 ? '1 reply' : `${message.reply_count} replies`}
						{props.unseenReplies ? ' (new)' : ''}
						{message.last_reply_at && (
							<span class="muted"> · last reply {formatTime(message.last_reply_at)}</span>
						)}
					</button>
				)}
				{message.sendState === 'sending' && <p class="send-state muted">Sending…</p>}
				{message.sendState === 'failed' && (
					<p class="send-state failed-text">
						Not sent.{' '}
						<button type="button" class="link-button" onClick={() => void retryMessage(message.channel_id, message.id)}>
							Retry
						</button>{' '}
						<button type="button" class="link-button" onClick={() => discardMessage(message.channel_id, message.id)}>
							Discard
						</button>
					</p>
				)}
				{confirmDelete && (
					<p class="confirm-row" role="group" aria-label="Confirm deletion">
						Delete this message?{' '}
						<button type="button" class="danger" onClick={() => void remove()}>
							Delete
						</button>{' '}
						<button type="button" onClick={() => setConfirmDelete(false)}>
							Cancel
						</button>
					</p>
				)}
				<ErrorText error={error} />
			</div>
			{!pending && !editing && (
				<div class="message-actions" role="group" aria-label="Message actions">
					{canReact && <ReactButton message={message} onError={setError} />}
					{onOpenThread && (
						<button type="button" onClick={() => onOpenThread(message.id)}>
							Thread
						</button>
					)}
					{onOpenThread && !archived && (
						<button type="button" onClick={() => onReply(message.id)}>
							Reply
						</button>
					)}
					{canReact && (
						<button
							type="button"
							onClick={() => togglePin(message).catch((err: unknown) => setError(describe(err)))}
						>
							{message.is_pinned ? 'Unpin' : 'Pin'}
						</button>
					)}
					{own && !archived && (
						<button type="button" onClick={() => setEditing(true)}>
							Edit
						</button>
					)}
					{(own || canManageMembers.value) && !archived && (
						<button type="button" onClick={() => setConfirmDelete(true)}>
							Delete
						</button>
					)}
				</div>
			)}
		</li>
	);
}

function EditBox({ message, onDone }: { message: TimelineItem; onDone: () => void }) {
	const [text, setText] = useState(message.content);
	const [error, setError] = useState<string | null>(null);
	const input = useRef<HTMLTextAreaElement>(null);

	useLayoutEffect(() => {
		// `autofocus` only works on page load: focus by hand, caret at the end -- before the
		// box is painted. Done after the paint, it could move the caret while text was being
		// entered over the selected old text, which then kept the old text in front (seen in
		// CI: "Hi Alice!Hi Alice, good morning!").
		const box = input.current;
		box?.focus();
		box?.setSelectionRange(box.value.length, box.value.length);
	}, []);

	const tooLong = contentTooLong(text.trim());

	const save = async () => {
		const content = text.trim();
		if (content === '' || content === message.content) {
			onDone();
			return;
		}
		if (tooLong !== null) return;
		try {
			await editMessage(message.channel_id, message.id, content);
			onDone();
		} catch (err) {
			setError(describe(err));
		}
	};

	const onKeyDown = (event: TargetedKeyboardEvent<HTMLTextAreaElement>) => {
		if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
			event.preventDefault();
			void save();
		} else if (event.key === 'Escape') {
			event.preventDefault();
			onDone();
		}
	};

	return (
		<div class="edit-box">
			<label class="visually-hidden" for={`edit-${message.id}`}>
				Edit message
			</label>
			<textarea
				id={`edit-${message.id}`}
				value={text}
				ref={input}
				rows={Math.min(8, text.split('\n').length + 1)}
				onInput={(e) => setText(e.currentTarget.value)}
				onKeyDown={onKeyDown}
			/>
			<p class="muted small">
				Enter to save · Escape to cancel{' '}
				<button type="button" class="link-button" onClick={() => void save()}>
					Save
				</button>
			</p>
			<ErrorText error={tooLong ?? error} />
		</div>
	);
}
