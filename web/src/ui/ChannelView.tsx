// A channel: its header, the timeline (infinite scroll upward), who is typing, the composer.
import type { JSX, TargetedEvent, TargetedKeyboardEvent } from 'preact';
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import * as api from '../lib/api';
import { navigate, paths } from '../lib/router';
import type { Channel, Id } from '../lib/types';
import {
	contentTooLong,
	describe,
	loadOlder,
	pins,
	noteTyping,
	openChannel,
	sendMessage,
	stopTyping,
	timelineOf,
	typistsIn,
	type TimelineItem,
} from '../state/chat';
import { canManageMembers, canWrite, channelLabel, channels, deleteChannel, displayName, editChannel, refreshChannels, setArchived, tenant, updateChannel } from '../state/workspace';
import { currentUser } from '../lib/session';
import { UploadList, useUploads } from './Attachments';
import { ErrorText, formatDay } from './common';
import { ChannelInviteButton } from './InvitePanel';
import { MembersButton } from './MemberList';
import { MessageItem } from './MessageItem';
import { insertMention, MentionList, type MentionQuery, mentionAt, type Suggestion, suggestionsFor } from './MentionSuggestions';
import { CallButton } from './calls';
import { PinsPanel, ThreadPanel } from './SidePanels';
import { mutedChannels, setMuted } from '../state/notifications';
import { closeThread, openThread, openThreadId, unseenThreads } from '../state/threads';
import { focused, jumpError } from '../state/search';

/** What the panel beside the timeline shows. */
export type SidePanel = { kind: 'pins' } | { kind: 'thread' } | null;

// Load older messages when the reader scrolls this close to the top.
const LOAD_OLDER_WITHIN_PX = 200;
// Keep following new messages while the reader is this close to the bottom.
const STICK_WITHIN_PX = 120;
// Consecutive messages by one author within this time share one header.
const GROUP_WINDOW_MS = 5 * 60_000;

export function ChannelView({ channelId, header }: { channelId: Id; header: JSX.Element }) {
	const open = tenant.value!;
	const channel = channels.value.find((c) => c.id === channelId);
	const [error, setError] = useState<string | null>(null);
	const [replyTo, setReplyTo] = useState<Id | null>(null);
	const [panel, setPanel] = useState<SidePanel>(null);

	useEffect(() => {
		setReplyTo(null);
		setPanel(null);
		closeThread();
		void openChannel(channelId);
	}, [channelId]);

	const showThread = (rootId: Id) => {
		setPanel({ kind: 'thread' });
		openThread(channelId, rootId).catch((err: unknown) => setError(describe(err)));
	};

	// A search result that is a thread reply: its thread opens beside the timeline.
	const focus = focused.value;
	useEffect(() => {
		if (focus !== null && focus.channelId === channelId && focus.threadId !== null) showThread(focus.threadId);
	}, [focus?.seq]);
	const hidePanel = () => {
		setPanel(null);
		closeThread();
	};

	if (channel === undefined) {
		return (
			<section class="channel-view">
				{header}
				<p class="empty muted">This channel does not exist, or you cannot see it.</p>
			</section>
		);
	}

	const join = async () => {
		try {
			await api.joinChannel(open.id, channel.id);
			updateChannel({ ...channel, is_member: true, member_count: channel.member_count + 1 });
		} catch (err) {
			setError(describe(err));
		}
	};

	const leave = async () => {
		try {
			await api.leaveChannel(open.id, channel.id);
			await refreshChannels();
			navigate(paths.tenant(open.id));
		} catch (err) {
			setError(describe(err));
		}
	};

	return (
		<section class="channel-view" aria-labelledby="channel-title">
			<header class="main-header">
				{header}
				<div class="channel-heading">
					<h1 id="channel-title">
						{channel.channel_type === 'direct' ? (
							<>
								<span class="hash" aria-hidden="true">
									@
								</span>
								{channelLabel(channel)}
							</>
						) : (
							<>
								<span class="hash" aria-hidden="true">
									{channel.is_private ? '🔒' : '#'}
								</span>
								{channel.name}
							</>
						)}
					</h1>
					{channel.purpose && <p class="purpose muted">{channel.purpose}</p>}
				</div>
				<div class="header-actions">
					<button
						type="button"
						class="subtle"
						aria-pressed={panel?.kind === 'pins'}
						onClick={() => {
							closeThread();
							setPanel(panel?.kind === 'pins' ? null : { kind: 'pins' });
						}}
					>
						<span aria-hidden="true">📌</span> Pinned ({pins.value[channel.id]?.length ?? 0})
					</button>
					<MembersButton />
					<ChannelInviteButton channel={channel} />
					{canWrite(channel) && <CallButton channel={channel} />}
					{channel.is_member && <MuteButton channelId={channel.id} onError={setError} />}
					{channel.is_member && channel.channel_type !== 'direct' && (
						<button type="button" class="subtle" onClick={() => void leave()}>
							Leave channel
						</button>
					)}
					{channel.channel_type !== 'direct' && (canManageMembers.value || channel.created_by === currentUser.value?.id) && (
						<ChannelSettingsButton channel={channel} />
					)}
				</div>
			</header>
			<ErrorText error={error} />
			<ErrorText error={jumpError.value} />
			<div class="channel-body">
				<div class="channel-main">
					<TimelineView channel={channel} onReply={setReplyTo} onOpenThread={showThread} />
					<TypingLine channelId={channel.id} />
					{channel.archived ? (
						<div class="join-bar archived-banner" role="status">
							<p>
								<strong>This channel is archived.</strong> Its history stays here to read; nobody can post in it.
							</p>
						</div>
					) : channel.is_member ? (
						<Composer channel={channel} replyTo={replyTo} onCancelReply={() => setReplyTo(null)} />
					) : (
						<div class="join-bar">
							<p>You are previewing {channelLabel(channel)}.</p>
							<button type="button" class="primary" onClick={() => void join()}>
								Join channel
							</button>
						</div>
					)}
				</div>
				{panel?.kind === 'pins' && <PinsPanel channel={channel} onClose={hidePanel} />}
				{panel?.kind === 'thread' && openThreadId.value !== null && (
					<ThreadPanel channel={channel} rootId={openThreadId.value} onClose={hidePanel} />
				)}
			</div>
		</section>
	);
}

function MuteButton({ channelId, onError }: { channelId: Id; onError: (error: string) => void }) {
	const muted = mutedChannels.value.has(channelId);
	return (
		<button
			type="button"
			class="subtle"
			aria-pressed={muted}
			title={muted ? 'Muted: only messages naming you notify you' : 'Notifications on'}
			onClick={() => setMuted(channelId, !muted).catch((err: unknown) => onError(describe(err)))}
		>
			<span aria-hidden="true">{muted ? '🔕' : '🔔'}</span> {muted ? 'Muted' : 'Mute'}
		</button>
	);
}

export function TimelineView(props: { channel: Channel; onReply: (id: Id) => void; onOpenThread?: (id: Id) => void }) {
	const { channel, onReply } = props;
	const timeline = timelineOf(channel.id);
	const scroller = useRef<HTMLDivElement>(null);
	const previous = useRef<{ channel: Id; first?: Id; last?: Id; height: number; top: number } | null>(null);
	const items = timeline.items;

	// Keep the reader's place: at the bottom for new messages, in place when older ones arrive above.
	useLayoutEffect(() => {
		const box = scroller.current;
		if (box === null) return;
		const before = previous.current;
		const first = items[0]?.id;
		const last = items[items.length - 1]?.id;
		if (before === null || before.channel !== channel.id) {
			box.scrollTop = box.scrollHeight;
		} else if (first !== before.first && last === before.last) {
			box.scrollTop = before.top + (box.scrollHeight - before.height);
		} else if (last !== before.last) {
			const wasNearBottom = before.height - before.top - box.clientHeight < STICK_WITHIN_PX;
			const mine = items[items.length - 1]?.sendState !== undefined;
			if (wasNearBottom || mine) box.scrollTop = box.scrollHeight;
		}
		previous.current = { channel: channel.id, first, last, height: box.scrollHeight, top: box.scrollTop };
		// A short history that does not fill the view: load more until it does.
		if (timeline.hasOlder && !timeline.loadingOlder && box.scrollHeight <= box.clientHeight) {
			void loadOlder(channel.id);
		}
	});

	// A search result jumped here: bring its message into view, once per jump.
	const focus = focused.value;
	const scrolledTo = useRef(0);
	useEffect(() => {
		if (focus === null || focus.channelId !== channel.id || scrolledTo.current === focus.seq) return;
		const row = scroller.current?.querySelector<HTMLElement>(`[data-message-id="${focus.messageId}"]`);
		if (!row) return;
		scrolledTo.current = focus.seq;
		row.scrollIntoView({ block: 'center' });
		if (previous.current && scroller.current) {
			previous.current = { ...previous.current, height: scroller.current.scrollHeight, top: scroller.current.scrollTop };
		}
	}, [focus?.seq, channel.id, items.length]);

	const onScroll = () => {
		const box = scroller.current;
		if (box === null) return;
		if (previous.current) {
			previous.current = { ...previous.current, height: box.scrollHeight, top: box.scrollTop };
		}
		if (box.scrollTop < LOAD_OLDER_WITHIN_PX) void loadOlder(channel.id);
	};

	const byId = new Map(items.map((item) => [item.id, item]));
	return (
		<div
			class="timeline"
			ref={scroller}
			onScroll={onScroll}
			tabIndex={0}
			role="log"
			aria-label={`Messages in ${channelLabel(channel)}`}
		>
			{!timeline.loaded && <p class="muted center">Loading messages…</p>}
			{timeline.loadingOlder && <p class="muted center">Loading older messages…</p>}
			{timeline.loaded && !timeline.hasOlder && (
				<div class="timeline-start">
					<h2>
						{channel.channel_type === 'direct' ? `Your conversation with ${channelLabel(channel)}` : `Welcome to #${channel.name}`}
					</h2>
					<p class="muted">This is the start of the {channel.channel_type === 'direct' ? 'conversation' : 'channel'}.</p>
				</div>
			)}
			<ErrorText error={timeline.error} />
			<ol class="message-list">
				{items.map((item, index) => (
					<Row key={item.id} item={item} prior={items[index - 1]} quoted={item.referenced_message_id ? byId.get(item.referenced_message_id) ?? null : null} onReply={onReply} canReact={canWrite(channel)} onOpenThread={props.onOpenThread} focused={focus?.channelId === channel.id && focus.messageId === item.id} />
				))}
			</ol>
		</div>
	);
}

function Row(props: {
	item: TimelineItem;
	prior: TimelineItem | undefined;
	quoted: TimelineItem | null;
	onReply: (id: Id) => void;
	canReact: boolean;
	onOpenThread?: (id: Id) => void;
	focused?: boolean;
}) {
	const { item, prior } = props;
	const newDay = prior === undefined || new Date(prior.created_at).toDateString() !== new Date(item.created_at).toDateString();
	const leading =
		newDay ||
		prior === undefined ||
		prior.author_id !== item.author_id ||
		item.referenced_message_id !== null ||
		Date.parse(item.created_at) - Date.parse(prior.created_at) > GROUP_WINDOW_MS;
	return (
		<>
			{newDay && (
				<li class="day-divider" role="separator">
					<span>{formatDay(item.created_at)}</span>
				</li>
			)}
			<MessageItem
				message={item}
				quoted={props.quoted}
				leading={leading}
				onReply={props.onReply}
				canReact={props.canReact}
				onOpenThread={props.onOpenThread}
				unseenReplies={unseenThreads.value.has(item.id)}
				focused={props.focused}
			/>
		</>
	);
}

export function TypingLine({ channelId }: { channelId: Id }) {
	const names = typistsIn(channelId).map(displayName);
	let text = '';
	if (names.length === 1) text = `${names[0]} is typing…`;
	else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
	else if (names.length > 2) text = 'Several people are typing…';
	return (
		<p class="typing-line" aria-live="polite">
			{text}
		</p>
	);
}

export function Composer(props: { channel: Channel; replyTo: Id | null; onCancelReply: () => void }) {
	const { channel, replyTo } = props;
	const [text, setText] = useState('');
	const [mention, setMention] = useState<MentionQuery | null>(null);
	const [selected, setSelected] = useState(0);
	const input = useRef<HTMLTextAreaElement>(null);
	const [dragging, setDragging] = useState(false);
	const picker = useRef<HTMLInputElement>(null);
	const files = useUploads(channel.id);
	const suggestions = mention ? suggestionsFor(mention.typed, channel.channel_type !== 'direct') : [];
	const suggesting = suggestions.length > 0;
	const quoted = replyTo ? timelineOf(channel.id).items.find((i) => i.id === replyTo) : undefined;

	useEffect(() => {
		if (replyTo) input.current?.focus();
	}, [replyTo]);

	useEffect(() => () => stopTyping(), [channel.id]);

	const tooLong = contentTooLong(text.trim());

	const empty = text.trim() === '' && files.ready.length === 0;
	const send = () => {
		const content = text.trim();
		if (empty || files.busy || contentTooLong(content) !== null) return;
		setText('');
		props.onCancelReply();
		void sendMessage(channel.id, content, replyTo, files.ready);
		files.clear();
	};

	const onPaste = (event: ClipboardEvent) => {
		const pasted = Array.from(event.clipboardData?.files ?? []);
		if (pasted.length === 0) return;
		event.preventDefault();
		files.add(pasted);
	};

	const onDrop = (event: DragEvent) => {
		event.preventDefault();
		setDragging(false);
		files.add(Array.from(event.dataTransfer?.files ?? []));
	};

	const lookForMention = (box: HTMLTextAreaElement) => {
		const found = mentionAt(box.value, box.selectionStart);
		if (found?.at !== mention?.at || found?.typed !== mention?.typed) setSelected(0);
		setMention(found);
	};

	const choose = (suggestion: Suggestion) => {
		const box = input.current;
		if (box === null || mention === null) return;
		const [value, caret] = insertMention(box.value, box.selectionStart, mention, suggestion.name);
		setText(value);
		setMention(null);
		box.value = value;
		box.setSelectionRange(caret, caret);
		box.focus();
	};

	const onKeyDown = (event: TargetedKeyboardEvent<HTMLTextAreaElement>) => {
		if (suggesting && (event.key === 'ArrowDown' || event.key === 'ArrowUp')) {
			event.preventDefault();
			const step = event.key === 'ArrowDown' ? 1 : -1;
			setSelected((selected + step + suggestions.length) % suggestions.length);
		} else if (suggesting && (event.key === 'Enter' || event.key === 'Tab') && !event.isComposing) {
			event.preventDefault();
			choose(suggestions[Math.min(selected, suggestions.length - 1)]!);
		} else if (suggesting && event.key === 'Escape') {
			event.preventDefault();
			setMention(null);
		} else if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
			event.preventDefault();
			send();
		} else if (event.key === 'Escape' && replyTo) {
			props.onCancelReply();
		}
	};

	const onInput = (event: TargetedEvent<HTMLTextAreaElement>) => {
		const value = event.currentTarget.value;
		setText(value);
		lookForMention(event.currentTarget);
		if (value.trim() === '') stopTyping();
		else noteTyping(channel.id);
	};

	return (
		<form
			class={`composer${dragging ? ' dropping' : ''}`}
			onSubmit={(event) => {
				event.preventDefault();
				send();
			}}
			onDragOver={(event) => {
				if (!event.dataTransfer?.types.includes('Files')) return;
				event.preventDefault();
				setDragging(true);
			}}
			onDragLeave={() => setDragging(false)}
			onDrop={onDrop}
		>
			{replyTo && (
				<div class="replying">
					<span>
						Replying to <strong>{quoted ? displayName(quoted.author_id) : 'a message'}</strong>
					</span>
					<button type="button" class="link-button" onClick={props.onCancelReply}>
						Cancel
					</button>
				</div>
			)}
			{suggesting && (
				<MentionList id="mention-suggestions" suggestions={suggestions} selected={selected} onChoose={choose} />
			)}
			<UploadList uploads={files.uploads} onRemove={files.remove} />
			<div class="composer-row">
				<input
					ref={picker}
					type="file"
					multiple
					hidden
					data-testid="file-input"
					onChange={(event) => {
						files.add(Array.from(event.currentTarget.files ?? []));
						event.currentTarget.value = '';
					}}
				/>
				<button type="button" class="secondary attach" aria-label="Attach files" title="Attach files" onClick={() => picker.current?.click()}>
					📎
				</button>
				<label class="visually-hidden" for="composer-input">
					Message {channelLabel(channel)}
				</label>
				<textarea
					id="composer-input"
					ref={input}
					name="message"
					rows={1}
					placeholder={`Message ${channelLabel(channel)}`}
					value={text}
					aria-invalid={tooLong !== null}
					aria-describedby={tooLong !== null ? 'composer-limit' : undefined}
					aria-autocomplete="list"
					aria-controls={suggesting ? 'mention-suggestions' : undefined}
					aria-activedescendant={suggesting ? `mention-suggestions-${selected}` : undefined}
					onInput={onInput}
					onKeyDown={onKeyDown}
					onClick={(event) => lookForMention(event.currentTarget)}
					onBlur={() => setMention(null)}
					onPaste={onPaste}
				/>
				<button type="submit" class="primary" disabled={empty || files.busy || tooLong !== null}>
					Send
				</button>
			</div>
			{tooLong !== null && (
				<p id="composer-limit" class="error-text" role="alert">
					{tooLong}
				</p>
			)}
		</form>
	);
}

/** The channel's creator and workspace owners and admins rename it, set its topic, archive
 * or unarchive it, or delete it. An archived channel is unarchived before it is renamed. */
function ChannelSettingsButton({ channel }: { channel: Channel }) {
	const [open, setOpen] = useState(false);
	const [name, setName] = useState(channel.name);
	const [purpose, setPurpose] = useState(channel.purpose ?? '');
	const [error, setError] = useState<string | null>(null);
	const [confirming, setConfirming] = useState(false);

	const show = () => {
		setName(channel.name);
		setPurpose(channel.purpose ?? '');
		setError(null);
		setConfirming(false);
		setOpen(true);
	};
	const save = async (event: Event) => {
		event.preventDefault();
		setError(null);
		try {
			await editChannel(channel.id, { name: name.trim(), purpose: purpose.trim() || null });
			setOpen(false);
		} catch (err) {
			setError(describe(err));
		}
	};
	const remove = async () => {
		try {
			await deleteChannel(channel.id);
		} catch (err) {
			setError(describe(err));
		}
	};
	const archive = async (archived: boolean) => {
		setError(null);
		try {
			await setArchived(channel.id, archived);
			setOpen(false);
		} catch (err) {
			setError(describe(err));
		}
	};
	const deleteButton = confirming ? (
		<button type="button" class="danger" onClick={() => void remove()}>
			Delete #{channel.name} for everyone
		</button>
	) : (
		<button type="button" class="danger" onClick={() => setConfirming(true)}>
			Delete channel
		</button>
	);

	return (
		<>
			<button type="button" class="subtle" aria-expanded={open} onClick={() => (open ? setOpen(false) : show())}>
				Channel settings
			</button>
			{open && (
				<div class="channel-settings" role="dialog" aria-label="Channel settings">
				{channel.archived ? (
					<div class="settings-archived">
						<p>#{channel.name} is archived: read-only for everyone. Unarchive it to post in it or rename it.</p>
						<ErrorText error={error} />
						<div class="form-actions">
							<button type="button" class="primary" onClick={() => void archive(false)}>
								Unarchive channel
							</button>
							<button type="button" onClick={() => setOpen(false)}>
								Cancel
							</button>
							{deleteButton}
						</div>
					</div>
				) : (
				<form onSubmit={(e) => void save(e)}>
					<label>
						Name
						<input name="name" value={name} maxLength={100} required onInput={(e) => setName(e.currentTarget.value)} />
					</label>
					<label>
						Topic
						<input name="purpose" value={purpose} maxLength={1000} onInput={(e) => setPurpose(e.currentTarget.value)} />
					</label>
					<ErrorText error={error} />
					<div class="form-actions">
						<button type="submit" class="primary">
							Save
						</button>
						<button type="button" onClick={() => setOpen(false)}>
							Cancel
						</button>
						<button type="button" title="Read-only for everyone; history stays" onClick={() => void archive(true)}>
							Archive channel
						</button>
						{deleteButton}
					</div>
				</form>
				)}
				</div>
			)}
		</>
	);
}
