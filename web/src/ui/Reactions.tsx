// A message's reactions (emoji, count, who) and the small picker to add one.
import { useEffect, useRef, useState } from 'preact/hooks';
import { currentUser } from '../lib/session';
import type { Message } from '../lib/types';
import { describe, toggleReaction } from '../state/chat';
import { displayName } from '../state/workspace';
import { ErrorText } from './common';

// The picker's choice: the emoji teams reach for most, with the words a screen reader says.
const PICKER: ReadonlyArray<readonly [string, string]> = [
	['👍', 'thumbs up'], ['👎', 'thumbs down'], ['❤️', 'heart'], ['😂', 'laughing'],
	['🎉', 'party'], ['🙏', 'thank you'], ['👀', 'eyes'], ['🚀', 'rocket'],
	['✅', 'done'], ['❌', 'no'], ['🔥', 'fire'], ['💯', 'hundred'],
	['😀', 'smile'], ['😅', 'sweat smile'], ['😮', 'surprised'], ['😢', 'sad'],
	['🤔', 'thinking'], ['🙌', 'raised hands'], ['👏', 'clapping'], ['💪', 'strong'],
	['👋', 'wave'], ['🤝', 'handshake'], ['⭐', 'star'], ['☕', 'coffee'],
	['🐛', 'bug'], ['💡', 'idea'], ['⚠️', 'warning'], ['📌', 'pin'],
];

function names(userIds: readonly string[]): string {
	const me = currentUser.value?.id;
	const shown = userIds.map((id) => (id === me ? 'you' : displayName(id)));
	if (shown.length <= 1) return shown.join('');
	return `${shown.slice(0, -1).join(', ')} and ${shown[shown.length - 1]}`;
}

export function ReactionBar({ message, canReact }: { message: Message; canReact: boolean }) {
	const [error, setError] = useState<string | null>(null);
	const me = currentUser.value?.id;
	if (message.reactions.length === 0 && error === null) return null;
	const toggle = (emoji: string) => {
		setError(null);
		toggleReaction(message, emoji).catch((err: unknown) => setError(describe(err)));
	};
	return (
		<div class="reactions" role="group" aria-label="Reactions">
			{message.reactions.map((r) => {
				const mine = me !== undefined && r.user_ids.includes(me);
				const who = names(r.user_ids);
				return (
					<button
						type="button"
						key={r.emoji}
						class={`reaction${mine ? ' mine' : ''}`}
						aria-pressed={mine}
						disabled={!canReact}
						title={`${who} reacted with ${r.emoji}`}
						aria-label={`${r.emoji} ${r.count}: ${who}`}
						onClick={() => toggle(r.emoji)}
					>
						<span aria-hidden="true">{r.emoji}</span> <span class="reaction-count">{r.count}</span>
					</button>
				);
			})}
			{canReact && <ReactButton message={message} compact onError={setError} />}
			<ErrorText error={error} />
		</div>
	);
}

/** "React" (or a compact ☺+ button) that opens the picker. */
export function ReactButton(props: { message: Message; compact?: boolean; onError: (error: string) => void }) {
	const [open, setOpen] = useState(false);
	const box = useRef<HTMLSpanElement>(null);

	useEffect(() => {
		if (!open) return;
		const away = (event: MouseEvent) => {
			if (box.current && !box.current.contains(event.target as Node)) setOpen(false);
		};
		document.addEventListener('mousedown', away);
		return () => document.removeEventListener('mousedown', away);
	}, [open]);

	const pick = (emoji: string) => {
		setOpen(false);
		const me = currentUser.value?.id;
		const given = props.message.reactions.some((r) => r.emoji === emoji && me !== undefined && r.user_ids.includes(me));
		if (given) return; // picking what we already gave keeps it
		toggleReaction(props.message, emoji).catch((err: unknown) => props.onError(describe(err)));
	};

	return (
		<span class="react-anchor" ref={box}>
			<button
				type="button"
				class={props.compact ? 'reaction add-reaction' : undefined}
				aria-label={props.compact ? 'Add reaction' : undefined}
				aria-expanded={open}
				onClick={() => setOpen(!open)}
			>
				{props.compact ? '☺+' : 'React'}
			</button>
			{open && (
				<div
					class="emoji-picker"
					role="group"
					aria-label="Pick a reaction"
					onKeyDown={(event) => {
						if (event.key === 'Escape') setOpen(false);
					}}
				>
					{PICKER.map(([emoji, label]) => (
						<button type="button" key={emoji} title={label} aria-label={`${emoji} ${label}`} onClick={() => pick(emoji)}>
							{emoji}
						</button>
					))}
				</div>
			)}
		</span>
	);
}
