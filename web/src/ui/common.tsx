// Small building blocks shared by the views.
import type { AnchorHTMLAttributes, ComponentChildren, TargetedMouseEvent } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { navigate } from '../lib/router';
import type { Presence } from '../lib/types';

type AnchorProps = AnchorHTMLAttributes<HTMLAnchorElement> & { href: string };

/** An `<a>` that changes the route without reloading (modified clicks still open tabs). */
export function Link({ href, onClick, ...rest }: AnchorProps) {
	const follow = (event: TargetedMouseEvent<HTMLAnchorElement>) => {
		if (typeof onClick === 'function') onClick(event);
		if (event.defaultPrevented || event.button !== 0) return;
		if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
		event.preventDefault();
		navigate(href);
	};
	return <a href={href} onClick={follow} {...rest} />;
}

export const PRESENCE_LABELS: Record<Presence, string> = {
	online: 'Online',
	idle: 'Idle',
	dnd: 'Do not disturb',
	offline: 'Offline',
	invisible: 'Invisible',
};

export function PresenceDot({ presence }: { presence: Presence }) {
	return (
		<span
			class={`presence-dot presence-${presence}`}
			role="img"
			aria-label={PRESENCE_LABELS[presence]}
			title={PRESENCE_LABELS[presence]}
		/>
	);
}

const AVATAR_COLOURS = ['#4f46e5', '#0891b2', '#059669', '#ca8a04', '#dc2626', '#c026d3', '#7c3aed'];

export function Avatar({
	name,
	id,
	size = 36,
	src = null,
}: {
	name: string;
	id: string;
	size?: number;
	/** The user's picture; without one, their initials on a colour of their own. */
	src?: string | null;
}) {
	// Only a picture uploaded here: a URL a user typed (PUT /api/auth/me `avatar`) would have
	// everyone's browser fetch from a server of that user's choosing.
	if (src?.startsWith('/api/user/')) {
		return (
			<img class="avatar avatar-picture" src={src} alt="" aria-hidden="true" width={size} height={size} />
		);
	}
	let hash = 0;
	for (const ch of id) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
	const initials = name
		.split(/\s+/)
		.filter(Boolean)
		.slice(0, 2)
		.map((word) => word[0]!.toUpperCase())
		.join('');
	return (
		<span
			class="avatar"
			aria-hidden="true"
			style={{
				background: AVATAR_COLOURS[hash % AVATAR_COLOURS.length],
				width: `${size}px`,
				height: `${size}px`,
				fontSize: `${Math.round(size * 0.4)}px`,
			}}
		>
			{initials || '?'}
		</span>
	);
}

/** A modal dialog on `<dialog>`: Escape and the close button dismiss it. */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren }) {
	const ref = useRef<HTMLDialogElement>(null);
	useEffect(() => {
		const dialog = ref.current;
		if (dialog && !dialog.open) dialog.showModal();
		return () => dialog?.close();
	}, []);
	return (
		<dialog
			ref={ref}
			class="dialog"
			aria-label={props.title}
			onCancel={(event) => {
				event.preventDefault();
				props.onClose();
			}}
		>
			<header class="dialog-header">
				<h2>{props.title}</h2>
				<button type="button" class="icon-button" aria-label="Close" onClick={props.onClose}>
					×
				</button>
			</header>
			{props.children}
		</dialog>
	);
}

export function ErrorText({ error }: { error: string | null }) {
	return error ? (
		<p class="error-text" role="alert">
			{error}
		</p>
	) : null;
}

export function formatTime(iso: string): string {
	return new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

export function formatDay(iso: string): string {
	const date = new Date(iso);
	const today = new Date();
	const yesterday = new Date(today.getTime() - 86_400_000);
	if (date.toDateString() === today.toDateString()) return 'Today';
	if (date.toDateString() === yesterday.toDateString()) return 'Yesterday';
	return date.toLocaleDateString(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
}
