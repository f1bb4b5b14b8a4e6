// One's own profile: picture, display name, time zone, and a new password.
import { useState } from 'preact/hooks';
import * as api from '../lib/api';
import { currentUser } from '../lib/session';
import { describe } from '../state/chat';
import { applyProfile } from '../state/profile';
import { Avatar, Dialog, ErrorText } from './common';

/** The IANA names the browser knows, for the time zone picker. */
function timeZones(current: string | null): string[] {
	const known = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : ['UTC'];
	return current && !known.includes(current) ? [current, ...known] : known;
}

export function ProfileDialog({ onClose }: { onClose: () => void }) {
	return (
		<Dialog title="Profile" onClose={onClose}>
			<ProfileForm />
			<PasswordForm />
		</Dialog>
	);
}

function ProfileForm() {
	const user = currentUser.value!;
	const [name, setName] = useState(user.display_name);
	const [zone, setZone] = useState(user.time_zone ?? '');
	const [error, setError] = useState<string | null>(null);
	const [status, setStatus] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);

	const run = async (change: () => Promise<void>, done: string) => {
		setBusy(true);
		setError(null);
		setStatus(null);
		try {
			await change();
			setStatus(done);
		} catch (err) {
			setError(describe(err));
		} finally {
			setBusy(false);
		}
	};
	const save = (event: Event) => {
		event.preventDefault();
		void run(async () => applyProfile(await api.updateMe({ display_name: name.trim(), time_zone: zone })), 'Saved.');
	};
	const choosePicture = (event: Event) => {
		const input = event.currentTarget as HTMLInputElement;
		const file = input.files?.[0];
		input.value = '';
		if (file) void run(async () => applyProfile(await api.uploadAvatar(file)), 'Picture updated.');
	};
	const removePicture = () => void run(async () => applyProfile(await api.updateMe({ avatar: '' })), 'Picture removed.');

	return (
		<form class="form profile-form" onSubmit={save} aria-label="Your profile">
			<div class="profile-picture">
				<Avatar name={user.display_name} id={user.id} size={72} src={user.avatar} />
				<label class="button-like">
					Upload picture
					<input
						type="file"
						name="avatar"
						accept="image/png,image/jpeg,image/gif,image/webp"
						class="visually-hidden"
						disabled={busy}
						onChange={choosePicture}
					/>
				</label>
				{user.avatar && (
					<button type="button" disabled={busy} onClick={removePicture}>
						Remove picture
					</button>
				)}
			</div>
			<label>
				Display name
				<input
					name="display_name"
					value={name}
					required
					maxLength={100}
					pattern=".*\S.*"
					onInput={(e) => setName(e.currentTarget.value)}
				/>
			</label>
			<label>
				Time zone
				<select name="time_zone" value={zone} onChange={(e) => setZone(e.currentTarget.value)}>
					<option value="">(not set)</option>
					{timeZones(user.time_zone).map((z) => (
						<option key={z} value={z}>
							{z.replaceAll('_', ' ')}
						</option>
					))}
				</select>
			</label>
			<ErrorText error={error} />
			{status && (
				<p class="muted" role="status">
					{status}
				</p>
			)}
			<div class="form-actions">
				<button type="submit" class="primary" disabled={busy}>
					Save profile
				</button>
			</div>
		</form>
	);
}

function PasswordForm() {
	const [current, setCurrent] = useState('');
	const [next, setNext] = useState('');
	const [error, setError] = useState<string | null>(null);
	const [status, setStatus] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);

	const submit = async (event: Event) => {
		event.preventDefault();
		setBusy(true);
		setError(null);
		setStatus(null);
		try {
			await api.changePassword(current, next);
			setCurrent('');
			setNext('');
			setStatus('Password changed. Your other devices are signed out.');
		} catch (err) {
			setError(describe(err));
		} finally {
			setBusy(false);
		}
	};

	return (
		<form class="form" onSubmit={submit} aria-label="Change password">
			<h3>Change password</h3>
			<label>
				Current password
				<input
					type="password"
					name="current_password"
					autocomplete="current-password"
					required
					value={current}
					onInput={(e) => setCurrent(e.currentTarget.value)}
				/>
			</label>
			<label>
				New password
				<input
					type="password"
					name="new_password"
					autocomplete="new-password"
					required
					minLength={8}
					value={next}
					onInput={(e) => setNext(e.currentTarget.value)}
				/>
			</label>
			<ErrorText error={error} />
			{status && (
				<p class="muted" role="status">
					{status}
				</p>
			)}
			<div class="form-actions">
				<button type="submit" disabled={busy}>
					Change password
				</button>
			</div>
		</form>
	);
}
