// The panel beside a channel's timeline: its pinned messages (and a thread, see ThreadPanel).
import { useEffect, useState } from 'preact/hooks';
import type { Channel, Id } from '../lib/types';
import { describe, pins, togglePin } from '../state/chat';
import { displayName } from '../state/workspace';
import { ErrorText, formatDay, formatTime } from './common';

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
			{list?.length === 0 && <p class="muted side-panel-empty">Nothing is pinned in #{channel.name} yet.</p>}
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
							{channel.is_member && (
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
