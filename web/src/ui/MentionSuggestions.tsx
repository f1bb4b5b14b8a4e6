// `@` in the composer: the members (and `@channel`, `@here`) whose name starts with what
// follows it, chosen with the arrow keys and Enter or Tab, or a click.
import { currentUser } from '../lib/session';
import { members } from '../state/workspace';
import { EVERYONE } from './MessageText';

const MAX_SUGGESTIONS = 8;
// What precedes the caret when a name is being typed after `@`.
const TYPING_NAME = /(?:^|[^A-Za-z0-9_.@-])@([A-Za-z0-9_.-]*)$/;

export interface Suggestion {
	/** What goes after `@`. */
	name: string;
	label: string;
}

/** Where the `@` of the name being typed is, and what was typed after it. */
export interface MentionQuery {
	at: number;
	typed: string;
}

export function mentionAt(text: string, caret: number): MentionQuery | null {
	const match = TYPING_NAME.exec(text.slice(0, caret));
	if (match === null) return null;
	return { at: caret - match[1]!.length - 1, typed: match[1]! };
}

export function suggestionsFor(typed: string, withEveryone: boolean): Suggestion[] {
	const wanted = typed.toLowerCase();
	const me = currentUser.value?.id;
	const found: Suggestion[] = [];
	for (const member of members.value.values()) {
		if (member.user_id === me) continue;
		const username = member.username.toLowerCase();
		if (username.startsWith(wanted) || member.display_name.toLowerCase().startsWith(wanted)) {
			found.push({ name: member.username, label: member.display_name });
		}
	}
	found.sort((a, b) => a.name.localeCompare(b.name));
	if (withEveryone) {
		for (const name of EVERYONE) {
			if (name.startsWith(wanted)) {
				found.push({ name, label: name === 'here' ? 'Everyone online here' : 'Everyone in the channel' });
			}
		}
	}
	return found.slice(0, MAX_SUGGESTIONS);
}

/** `text` with the name being typed at `query` replaced by `@name `; and the caret after it. */
export function insertMention(text: string, caret: number, query: MentionQuery, name: string): [string, number] {
	const inserted = `@${name} `;
	return [text.slice(0, query.at) + inserted + text.slice(caret), query.at + inserted.length];
}

export function MentionList(props: {
	id: string;
	suggestions: Suggestion[];
	selected: number;
	onChoose: (suggestion: Suggestion) => void;
}) {
	return (
		<ul class="mention-suggestions" id={props.id} role="listbox" aria-label="People to mention">
			{props.suggestions.map((s, index) => (
				<li
					key={s.name}
					id={`${props.id}-${index}`}
					role="option"
					aria-selected={index === props.selected}
					onMouseDown={(event) => {
						event.preventDefault(); // keep the focus in the composer
						props.onChoose(s);
					}}
				>
					<strong>@{s.name}</strong> <span class="muted">{s.label}</span>
				</li>
			))}
		</ul>
	);
}
