// Sign in and sign up.
import { signal } from '@preact/signals';
import { useEffect, useState } from 'preact/hooks';
import type { ComponentChildren, TargetedEvent } from 'preact';
import * as api from '../lib/api';
import { navigate, paths } from '../lib/router';
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

/** The server's `ROOMLER__AUTH__SIGNUP`, asked once; null until known. */
const signupPolicy = signal<api.SignupPolicy | null>(null);

function useSignupPolicy(): api.SignupPolicy | null {
	useEffect(() => {
		if (signupPolicy.value === null) {
			api
				.signupPolicy()
				.then((answer) => (signupPolicy.value = answer.policy))
				.catch(() => undefined); // the form stays; the server still decides
		}
	}, []);
	return signupPolicy.value;
}

/** An invitation followed while signed out, taken up again once signed in (App's Home). */
const PENDING_INVITE_KEY = 'roomler.pendingInvite';

export function takePendingInvite(): string | null {
	const code = sessionStorage.getItem(PENDING_INVITE_KEY);
	sessionStorage.removeItem(PENDING_INVITE_KEY);
	return code;
}

/** The code in a pasted invitation link, or the code itself. */
function inviteCodeOf(text: string): string {
	const trimmed = text.trim();
	const match = trimmed.match(/\/invite\/([A-Za-z0-9_-]+)\/?$/);
	return match ? match[1]! : trimmed;
}

function AuthShell(props: { title: string; children: ComponentChildren }) {
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
	const policy = useSignupPolicy();
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
			{policy !== 'closed' && (
				<p class="muted">
					New here? <Link href="/signup">Create an account</Link>
				</p>
			)}
		</AuthShell>
	);
}

/** Sign-up; with `inviteCode` (an invitation link) the new account joins its workspace. */
export function SignupPage({ inviteCode }: { inviteCode?: string }) {
	const policy = useSignupPolicy();
	const { values, field } = useForm({
		email: '',
		username: '',
		display_name: '',
		password: '',
		invite: '',
	});
	const [error, setError] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);
	const [invitation, setInvitation] = useState<api.InvitationInfo | null>(null);
	const [invalid, setInvalid] = useState<string | null>(null);

	useEffect(() => {
		if (inviteCode === undefined) return;
		sessionStorage.setItem(PENDING_INVITE_KEY, inviteCode);
		api
			.invitationInfo(inviteCode)
			.then(setInvitation)
			.catch((err) => setInvalid(describe(err)));
	}, [inviteCode]);

	const submit = async (event: Event) => {
		event.preventDefault();
		setBusy(true);
		setError(null);
		const code = inviteCode ?? (values.invite.trim() ? inviteCodeOf(values.invite) : undefined);
		try {
			const auth = await api.register({
				email: values.email.trim(),
				username: values.username.trim(),
				display_name: values.display_name.trim() || values.username.trim(),
				password: values.password,
				...(code !== undefined ? { invite_code: code } : {}),
			});
			sessionStorage.removeItem(PENDING_INVITE_KEY);
			startSession(auth);
			// Straight into the workspace the invitation was for.
			if (invitation !== null) navigate(paths.tenant(invitation.tenant.id), { replace: true });
		} catch (err) {
			setError(describe(err));
			setBusy(false);
		}
	};

	const signIn = (
		<p class="muted">
			Already have an account? <Link href="/login">Sign in</Link>
		</p>
	);
	if (policy === 'closed') {
		return (
			<AuthShell title="Sign-up is closed">
				<p role="status">This server does not take new sign-ups. Ask its administrator for an account.</p>
				{signIn}
			</AuthShell>
		);
	}
	if (invalid !== null) {
		return (
			<AuthShell title="Invitation not valid">
				<p role="alert">{invalid}</p>
				<p class="muted">Ask whoever invited you for a new link.</p>
				{signIn}
			</AuthShell>
		);
	}
	const needsInvite = policy === 'invite' && inviteCode === undefined;
	const title = invitation ? `Join ${invitation.tenant.name}` : 'Create your account';

	return (
		<AuthShell title={title}>
			{invitation && (
				<p class="muted" role="status">
					You were invited to the workspace <strong>{invitation.tenant.name}</strong>. Create your account to join
					it{invitation.expires_at ? `; the invitation expires ${new Date(invitation.expires_at).toLocaleString()}` : ''}.
				</p>
			)}
			{needsInvite && <p class="muted">Sign-up on this server is by invitation: paste the invitation link you were sent.</p>}
			<form class="form" onSubmit={submit}>
				{needsInvite && (
					<label>
						Invitation link
						<input {...field('invite')} required autocomplete="off" />
					</label>
				)}
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
				<button type="submit" class="primary" disabled={busy || (inviteCode !== undefined && invitation === null)}>
					Sign up
				</button>
			</form>
			{signIn}
		</AuthShell>
	);
}

/** A signed-in user followed an invitation link: join its workspace. */
export function AcceptInvitePage({ code }: { code: string }) {
	const [invitation, setInvitation] = useState<api.InvitationInfo | null>(null);
	const [error, setError] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);

	useEffect(() => {
		api
			.invitationInfo(code)
			.then(setInvitation)
			.catch((err) => setError(describe(err)));
	}, [code]);

	const join = async () => {
		setBusy(true);
		setError(null);
		try {
			const tenant = await api.acceptInvitation(code);
			navigate(paths.tenant(tenant.id), { replace: true });
		} catch (err) {
			setError(describe(err));
			setBusy(false);
		}
	};

	return (
		<AuthShell title={invitation ? `Join ${invitation.tenant.name}` : 'Invitation'}>
			{invitation && (
				<p>
					You were invited to the workspace <strong>{invitation.tenant.name}</strong>.
				</p>
			)}
			<ErrorText error={error} />
			{invitation && (
				<button type="button" class="primary" disabled={busy} onClick={join}>
					Join {invitation.tenant.name}
				</button>
			)}
			<p class="muted">
				<Link href="/">Back to Roomler</Link>
			</p>
		</AuthShell>
	);
}
