// The search box (Ctrl+K): messages, people and channels of the workspace in one list.
// Arrows move through it, Enter opens: a channel, a direct conversation with a person, or a
// message in its channel (scrolled to it, highlighted).
import type { TargetedKeyboardEvent } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import * as api from '../lib/api';
import { navigate, paths } from '../lib/router';
import { currentUser } from '../lib/session';
import type { SearchChannel, SearchMessage, SearchPerson, SearchResults } from '../lib/types';
import { describe } from '../state/chat';
import { searchOpen, showMessage } from '../state/search';
import { addChannel, channelLabel, channels, tenant } from '../state/workspace';
import { Avatar, ErrorText, formatDay, formatTime } from './common';

// Wait this long after the last key before asking the server.
const TYPING_PAUSE_MS = 180;

type Choice =
	| { kind: 'channel'; channel: SearchChannel }
	| { kind: 'person'; person: SearchPerson }
	| { kind: 'message'; message: SearchMessage };

function choiceKey(choice: Choice): string {
	const item = choice.kind === 'channel' ? choice.channel : choice.kind === 'person' ? choice.person : choice.message;
	return `${choice.kind}-${item.id}`;
}

/** Ctrl+K (⌘K on a Mac) anywhere in a workspace opens the box; pressed again, closes it. */
export function useSearchShortcut(): void {
	useEffect(() => {
		const onKey = (event: KeyboardEvent) => {
			if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key.toLowerCase() === 'k') {
				event.preventDefault();
				searchOpen.value = !searchOpen.value;
			}
		};
		document.addEventListener('keydown', onKey);
		return () => document.removeEventListener('keydown', onKey);
	}, []);
}

export function SearchButton() {
	return (
		<button type="button" class="search-button" onClick={() => (searchOpen.value = true)} aria-keyshortcuts="Control+K">
			<span aria-hidden="true">🔍</span> Search <kbd>Ctrl K</kbd>
		</button>
	);
}

function where(channel: SearchChannel): string {
	const known = channels.value.find((c) => c.id === channel.id);
	if (known) return channelLabel(known);
	return channel.channel_type === 'direct' ? 'a direct conversation' : `#${channel.name}`;
}

export function SearchBox() {
	const open = tenant.value;
	const dialog = useRef<HTMLDialogElement>(null);
	const input = useRef<HTMLInputElement>(null);
	const [text, setText] = useState('');
	const [results, setResults] = useState<SearchResults | null>(null);
	const [selected, setSelected] = useState(0);
	const [error, setError] = useState<string | null>(null);
	const [loadingMore, setLoadingMore] = useState(false);
	const asked = useRef(0);

	useEffect(() => {
		const box = dialog.current;
		if (box && !box.open) box.showModal();
		input.current?.select();
		return () => box?.close();
	}, []);

	useEffect(() => {
		const q = text.trim();
		const ask = ++asked.current;
		if (q === '' || open === null) {
			setResults(null);
			setError(null);
			return;
		}
		const timer = setTimeout(() => {
			api
				.search(open.id, q)
				.then((found) => {
					if (ask !== asked.current) return; // a newer query is on its way
					setResults(found);
					setSelected(0);
					setError(null);
				})
				.catch((err: unknown) => {
					if (ask === asked.current) setError(describe(err));
				});
		}, TYPING_PAUSE_MS);
		return () => clearTimeout(timer);
	}, [text]);

	if (open === null) return null;
	const me = currentUser.value?.id;
	const choices: Choice[] = results
		? [
				...results.channels.map((channel) => ({ kind: 'channel' as const, channel })),
				...results.people.filter((p) => p.id !== me).map((person) => ({ kind: 'person' as const, person })),
				...results.messages.map((message) => ({ kind: 'message' as const, message })),
			]
		: [];

	const close = () => (searchOpen.value = false);

	const choose = async (choice: Choice) => {
		try {
			if (choice.kind === 'channel') {
				close();
				navigate(paths.channel(open.id, choice.channel.id));
			} else if (choice.kind === 'person') {
				const conversation = await api.startDirect(open.id, [choice.person.id]);
				addChannel(conversation);
				close();
				navigate(paths.channel(open.id, conversation.id));
			} else {
				close();
				await showMessage(choice.message);
			}
		} catch (err) {
			setError(describe(err));
		}
	};

	const more = async () => {
		if (results?.next_before == null) return;
		setLoadingMore(true);
		try {
			const page = await api.search(open.id, text.trim(), results.next_before);
			setResults({ ...results, messages: [...results.messages, ...page.messages], next_before: page.next_before });
		} catch (err) {
			setError(describe(err));
		} finally {
			setLoadingMore(false);
		}
	};

	const onKeyDown = (event: TargetedKeyboardEvent<HTMLInputElement>) => {
		if (choices.length === 0) return;
		if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
			event.preventDefault();
			const step = event.key === 'ArrowDown' ? 1 : -1;
			const next = (selected + step + choices.length) % choices.length;
			setSelected(next);
			document.getElementById(`search-choice-${next}`)?.scrollIntoView({ block: 'nearest' });
		} else if (event.key === 'Enter' && !event.isComposing) {
			event.preventDefault();
			void choose(choices[Math.min(selected, choices.length - 1)]!);
		}
	};

	const option = (choice: Choice, index: number) => (
		<li
			key={choiceKey(choice)}
			id={`search-choice-${index}`}
			role="option"
			class={`search-choice ${choice.kind}`}
			aria-selected={index === selected}
			onMouseMove={() => index !== selected && setSelected(index)}
			onClick={() => void choose(choice)}
		>
			{choice.kind === 'channel' && <ChannelChoice channel={choice.channel} />}
			{choice.kind === 'person' && <PersonChoice person={choice.person} />}
			{choice.kind === 'message' && <MessageChoice message={choice.message} />}
		</li>
	);

	let index = 0;
	const section = (title: string, items: Choice[]) =>
		items.length === 0 ? null : (
			<li class="search-section" role="presentation">
				<h3 id={`search-${title.toLowerCase()}`}>{title}</h3>
				<ul role="group" aria-labelledby={`search-${title.toLowerCase()}`}>
					{items.map((choice) => option(choice, index++))}
				</ul>
			</li>
		);

	const nothing = results !== null && choices.length === 0;
	return (
		<dialog
			ref={dialog}
			class="dialog search-dialog"
			aria-label="Search"
			onCancel={(event) => {
				event.preventDefault();
				close();
			}}
			onClick={(event) => event.target === dialog.current && close()}
		>
			<div class="search-field">
				<span aria-hidden="true">🔍</span>
				<input
					ref={input}
					type="search"
					name="search"
					aria-label="Search messages, people and channels"
					aria-controls="search-results"
					aria-activedescendant={choices.length > 0 ? `search-choice-${selected}` : undefined}
					aria-autocomplete="list"
					placeholder="Search messages, people, channels"
					autocomplete="off"
					value={text}
					onInput={(event) => setText(event.currentTarget.value)}
					onKeyDown={onKeyDown}
				/>
				<button type="button" class="icon-button" aria-label="Close search" onClick={close}>
					×
				</button>
			</div>
			<ErrorText error={error} />
			{results === null && error === null && (
				<p class="muted search-hint">
					Words find messages; <code>"a phrase"</code>, <code>in:#channel</code>, <code>in:@username</code> (your conversation with them) and <code>from:@username</code> narrow them.
				</p>
			)}
			{nothing && <p class="muted search-hint">Nothing found for “{text.trim()}”.</p>}
			{choices.length > 0 && (
				<ul id="search-results" class="search-results" role="listbox" aria-label="Results">
					{section(
						'Channels',
						choices.filter((c) => c.kind === 'channel'),
					)}
					{section(
						'People',
						choices.filter((c) => c.kind === 'person'),
					)}
					{section(
						'Messages',
						choices.filter((c) => c.kind === 'message'),
					)}
				</ul>
			)}
			{results?.next_before != null && (
				<button type="button" class="link-button search-more" disabled={loadingMore} onClick={() => void more()}>
					{loadingMore ? 'Loading…' : 'More messages'}
				</button>
			)}
		</dialog>
	);
}

function ChannelChoice({ channel }: { channel: SearchChannel }) {
	return (
		<>
			<span class="hash" aria-hidden="true">
				{channel.is_private ? '🔒' : '#'}
			</span>
			<span class="search-name">{channel.name}</span>
			{channel.path !== channel.name && <span class="muted">{channel.path}</span>}
		</>
	);
}

function PersonChoice({ person }: { person: SearchPerson }) {
	return (
		<>
			<Avatar name={person.display_name} id={person.id} size={24} />
			<span class="search-name">{person.display_name}</span>
			<span class="muted">@{person.username}</span>
		</>
	);
}

function MessageChoice({ message }: { message: SearchMessage }) {
	return (
		<div class="search-message">
			<p class="search-meta">
				<strong>{message.author.display_name}</strong>
				<span class="muted">
					{' '}
					in {where(message.channel)}
					{message.thread_id !== null && ' (thread)'} · {formatDay(message.created_at)} {formatTime(message.created_at)}
				</span>
			</p>
			<p class="search-snippet">
				{message.snippet.map((part, i) => (part.match ? <mark key={i}>{part.text}</mark> : <span key={i}>{part.text}</span>))}
			</p>
		</div>
	);
}

