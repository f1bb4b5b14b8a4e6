// Sign in and sign up.
import { useState } from 'preact/hooks';
import type { JSX, TargetedEvent } from 'preact';
import * as api from '../lib/api';
import { startSession } from '../lib/session';
import { describe } from '../state/chat';
import { ErrorText, Link } from './common';

function useForm<T extends Record<string, string>>(initial: T) {
	const [values, setValues] = useState(initial);
	const field = (name: keyof T) => ({
		name: name as string,
		value: values[name],
		onInput: (event: TargetedEvent<HTMLInputElement>) =>
			setValues((v) => ({ ...v, [name]: event.currentTarget.value })),
	});
	return { values, field };
}

function AuthShell(props: { title: string; children: JSX.Element | JSX.Element[] }) {
	return (
		<main class="auth-page">
			<div class="auth-card">
				<div class="brand">
					<span class="brand-mark" aria-hidden="true">
						R
					</span>
					Roomler
				</div>
				<h1>{props.title}</h1>
				{props.children}
			</div>
		</main>
	);
}

export function LoginPage() {
	const { values, field } = useForm({ login: '', password: '' });
	const [error, setError] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);

	const submit = async (event: Event) => {
		event.preventDefault();
		setBusy(true);
		setError(null);
		try {
			startSession(await api.login(values.login.trim(), values.password));
		} catch (err) {
			setError(describe(err));
			setBusy(false);
		}
	};

	return (
		<AuthShell title="Sign in">
			<form class="form" onSubmit={submit}>
				<label>
					Username or email
					<input {...field('login')} autocomplete="username" required autofocus />
				</label>
				<label>
					Password
					<input {...field('password')} type="password" autocomplete="current-password" required />
				</label>
				<ErrorText error={error} />
				<button type="submit" class="primary" disabled={busy}>
					Sign in
				</button>
			</form>
			<p class="muted">
				New here? <Link href="/signup">Create an account</Link>
			</p>
		</AuthShell>
	);
}

export function SignupPage() {
	const { values, field } = useForm({ email: '', username: '', display_name: '', password: '' });
	const [error, setError] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);

	const submit = async (event: Event) => {
		event.preventDefault();
		setBusy(true);
		setError(null);
		try {
			startSession(
				await api.register({
					email: values.email.trim(),
					username: values.username.trim(),
					display_name: values.display_name.trim() || values.username.trim(),
					password: values.password,
				}),
			);
		} catch (err) {
			setError(describe(err));
			setBusy(false);
		}
	};

	return (
		<AuthShell title="Create your account">
			<form class="form" onSubmit={submit}>
				<label>
					Email
					<input {...field('email')} type="email" autocomplete="email" required autofocus />
				</label>
				<label>
					Username
					<input
						{...field('username')}
						autocomplete="username"
						required
						pattern="[A-Za-z0-9_.\-]{3,32}"
						title="3 to 32 letters, digits, dots, dashes or underscores"
					/>
				</label>
				<label>
					Display name
					<input {...field('display_name')} autocomplete="name" maxLength={100} />
				</label>
				<label>
					Password
					<input {...field('password')} type="password" autocomplete="new-password" required minLength={8} />
				</label>
				<ErrorText error={error} />
				<button type="submit" class="primary" disabled={busy}>
					Sign up
				</button>
			</form>
			<p class="muted">
				Already have an account? <Link href="/login">Sign in</Link>
			</p>
		</AuthShell>
	);
}
