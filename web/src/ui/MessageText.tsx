// A message's text with its mentions marked: `@username` of a workspace member, `@channel`
// and `@here`; those that address us stand out more.
import type { ComponentChildren } from 'preact';
import { currentUser } from '../lib/session';
import { members } from '../state/workspace';

// `@` not inside a word or an address, then a name; a trailing `.` ends the sentence.
const MENTION = /(?<![A-Za-z0-9_.@-])@([A-Za-z0-9_.-]*[A-Za-z0-9_-])/g;
export const EVERYONE = ['channel', 'here'];

function knownNames(): Set<string> {
	const names = new Set(EVERYONE);
	for (const member of members.value.values()) names.add(member.username.toLowerCase());
	return names;
}

export function MessageText({ content }: { content: string }) {
	const known = knownNames();
	const me = currentUser.value?.username.toLowerCase();
	const parts: ComponentChildren[] = [];
	let last = 0;
	for (const match of content.matchAll(MENTION)) {
		const name = match[1]!.toLowerCase();
		if (!known.has(name)) continue;
		const start = match.index;
		if (start > last) parts.push(content.slice(last, start));
		const mine = name === me || EVERYONE.includes(name);
		parts.push(
			<span key={start} class={`mention${mine ? ' mention-me' : ''}`}>
				{match[0]}
			</span>,
		);
		last = start + match[0].length;
	}
	if (last < content.length) parts.push(content.slice(last));
	return <>{parts}</>;
}
