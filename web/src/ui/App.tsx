// The top level: who is signed in decides between the sign-in pages and the app.
import { useEffect } from 'preact/hooks';
import { realtime } from '../lib/realtime';
import { currentPath, matchRoute, navigate, paths } from '../lib/router';
import { currentUser } from '../lib/session';
import { lastTenantId, loadTenants } from '../state/workspace';
import { AcceptInvitePage, LoginPage, SignupPage, takePendingInvite } from './AuthPage';
import { Link } from './common';
import { ConnectionBanner } from './ConnectionBanner';
import { TenantsPage } from './TenantsPage';
import { WorkspacePage } from './WorkspacePage';

function Home() {
	useEffect(() => {
		// Signed in after following an invitation link: back to it.
		const invite = takePendingInvite();
		if (invite !== null) {
			navigate(`/invite/${invite}`, { replace: true });
			return;
		}
		loadTenants()
			.then((list) => {
				const last = lastTenantId();
				const target = list.find((t) => t.id === last) ?? (list.length === 1 ? list[0] : undefined);
				navigate(target ? paths.tenant(target.id) : '/tenants', { replace: true });
			})
			.catch(() => navigate('/tenants', { replace: true }));
	}, []);
	return <p class="muted center page-loading">Loading…</p>;
}

function NotFound() {
	return (
		<main class="tenants-page">
			<section class="card">
				<h1>Page not found</h1>
				<Link href="/">Go to Roomler</Link>
			</section>
		</main>
	);
}

export function App() {
	const user = currentUser.value;
	const route = matchRoute(currentPath.value);
	const publicPage = route.name === 'login' || route.name === 'signup';

	// The socket lives exactly as long as the session.
	useEffect(() => {
		if (user !== null) realtime.start();
		else realtime.stop();
	}, [user?.id]);

	useEffect(() => {
		if (user === null && !publicPage && route.name !== 'invite') navigate('/login', { replace: true });
		if (user !== null && publicPage) navigate('/', { replace: true });
	}, [user?.id, publicPage]);

	if (user === null) {
		if (route.name === 'invite') return <SignupPage inviteCode={route.code} />;
		return route.name === 'signup' ? <SignupPage /> : <LoginPage />;
	}

	let page;
	switch (route.name) {
		case 'login':
		case 'signup':
		case 'home':
			page = <Home />;
			break;
		case 'invite':
			page = <AcceptInvitePage code={route.code} />;
			break;
		case 'tenants':
			page = <TenantsPage />;
			break;
		case 'not-found':
			page = <NotFound />;
			break;
		default:
			page = <WorkspacePage route={route} />;
	}
	return (
		<>
			<ConnectionBanner />
			{page}
		</>
	);
}
