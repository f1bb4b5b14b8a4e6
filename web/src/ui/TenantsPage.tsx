// Pick one of your workspaces, or create one.
import { useEffect, useState } from 'preact/hooks';
import { navigate, paths } from '../lib/router';
import { currentUser } from '../lib/session';
import { describe } from '../state/chat';
import { createTenant, loadTenants, tenants } from '../state/workspace';
import { ErrorText, Link } from './common';
import { UserMenu } from './UserMenu';

export function slugify(name: string): string {
	return name
		.toLowerCase()
		.normalize('NFKD')
		.replace(/[^a-z0-9]+/g, '-')
		.replace(/^-+|-+$/g, '')
		.slice(0, 64);
}

export function TenantsPage() {
	const [error, setError] = useState<string | null>(null);
	const [loading, setLoading] = useState(false);

	const reload = async () => {
		setLoading(true);
		try {
			await loadTenants();
			setError(null);
		} catch (err) {
			setError(describe(err));
		} finally {
			setLoading(false);
		}
	};

	useEffect(() => {
		void reload();
		// Someone may add us to a workspace while we look at this page.
		const onFocus = () => void reload();
		window.addEventListener('focus', onFocus);
		return () => window.removeEventListener('focus', onFocus);
	}, []);

	const list = tenants.value;
	return (
		<main class="tenants-page">
			<header class="tenants-header">
				<div class="brand">
					<span class="brand-mark" aria-hidden="true">
						R
					</span>
					Roomler
				</div>
				<UserMenu />
			</header>
			<section class="card" aria-labelledby="your-workspaces">
				<div class="card-title-row">
					<h1 id="your-workspaces">Your workspaces</h1>
					<button type="button" onClick={() => void reload()} disabled={loading}>
						Refresh
					</button>
				</div>
				<ErrorText error={error} />
				{list === null ? (
					<p class="muted">Loading…</p>
				) : list.length === 0 ? (
					<p class="muted">
						{currentUser.value?.display_name}, you are not in any workspace yet. Create one below, or ask a
						colleague to add you by your username <strong>{currentUser.value?.username}</strong>.
					</p>
				) : (
					<ul class="tenant-list">
						{list.map((t) => (
							<li key={t.id}>
								<Link href={paths.tenant(t.id)} class="tenant-link">
									<span class="tenant-initial" aria-hidden="true">
										{t.name.slice(0, 1).toUpperCase()}
									</span>
									<span>
										<strong>{t.name}</strong>
										<span class="muted"> · {t.role}</span>
									</span>
								</Link>
							</li>
						))}
					</ul>
				)}
			</section>
			<CreateTenantForm />
		</main>
	);
}

function CreateTenantForm() {
	const [name, setName] = useState('');
	const [slug, setSlug] = useState('');
	const [slugEdited, setSlugEdited] = useState(false);
	const [error, setError] = useState<string | null>(null);
	const [busy, setBusy] = useState(false);

	const submit = async (event: Event) => {
		event.preventDefault();
		setBusy(true);
		setError(null);
		try {
			const created = await createTenant(name.trim(), slug);
			navigate(paths.tenant(created.id));
		} catch (err) {
			setError(describe(err));
			setBusy(false);
		}
	};

	return (
		<section class="card" aria-labelledby="create-workspace">
			<h2 id="create-workspace">Create a workspace</h2>
			<form class="form" onSubmit={submit}>
				<label>
					Workspace name
					<input
						name="tenant_name"
						value={name}
						required
						maxLength={100}
						onInput={(e) => {
							const value = e.currentTarget.value;
							setName(value);
							if (!slugEdited) setSlug(slugify(value));
						}}
					/>
				</label>
				<label>
					URL name
					<input
						name="tenant_slug"
						value={slug}
						required
						pattern="[a-z0-9\-]{2,64}"
						title="2 to 64 lowercase letters, digits or dashes"
						onInput={(e) => {
							setSlugEdited(true);
							setSlug(e.currentTarget.value);
						}}
					/>
				</label>
				<ErrorText error={error} />
				<button type="submit" class="primary" disabled={busy}>
					Create workspace
				</button>
			</form>
		</section>
	);
}
