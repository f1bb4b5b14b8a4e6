// Files in chat (docs/api.md, Files): the composer's uploads with their progress, and a
// message's attachments -- images as thumbnails, anything else as a download card. The
// bytes are fetched with the access token and shown from object URLs.
import { useEffect, useState } from 'preact/hooks';
import * as api from '../lib/api';
import type { Attachment, Id } from '../lib/types';
import { describe } from '../state/chat';
import { tenant } from '../state/workspace';

export interface Upload {
	key: number;
	name: string;
	size: number;
	/** 0..1 while sending. */
	progress: number;
	file: Attachment | null;
	error: string | null;
	abort: AbortController;
}

export function formatSize(bytes: number): string {
	if (bytes < 1024) return `${bytes} B`;
	if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
	return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

let nextKey = 1;

/** The composer's uploads into channel `cid`: each starts at once and reports progress. */
export function useUploads(cid: Id) {
	const [uploads, setUploads] = useState<Upload[]>([]);
	// Uploads belong to one channel: another channel's composer starts empty.
	useEffect(() => () => setUploads([]), [cid]);
	const change = (key: number, patch: Partial<Upload>) =>
		setUploads((list) => list.map((u) => (u.key === key ? { ...u, ...patch } : u)));

	const add = (files: Iterable<File>) => {
		const open = tenant.value;
		if (open === null) return;
		for (const file of files) {
			const upload: Upload = {
				key: nextKey++,
				name: file.name || 'pasted',
				size: file.size,
				progress: 0,
				file: null,
				error: null,
				abort: new AbortController(),
			};
			setUploads((list) => [...list, upload]);
			api
				.uploadFile(open.id, cid, file, (progress) => change(upload.key, { progress }), upload.abort.signal)
				.then((stored) => change(upload.key, { file: stored, progress: 1 }))
				.catch((error: unknown) => {
					if (!(error instanceof DOMException && error.name === 'AbortError')) {
						change(upload.key, { error: describe(error) });
					}
				});
		}
	};

	const remove = (key: number) => {
		const upload = uploads.find((u) => u.key === key);
		if (upload === undefined) return;
		upload.abort.abort();
		const open = tenant.value;
		if (upload.file !== null && open !== null) void api.withdrawUpload(open.id, cid, upload.file.id).catch(() => undefined);
		setUploads((list) => list.filter((u) => u.key !== key));
	};

	const ready = uploads.flatMap((u) => (u.file !== null ? [u.file] : []));
	const busy = uploads.some((u) => u.file === null && u.error === null);
	return { uploads, add, remove, ready, busy, clear: () => setUploads([]) };
}

export function UploadList(props: { uploads: Upload[]; onRemove: (key: number) => void }) {
	if (props.uploads.length === 0) return null;
	return (
		<ul class="upload-list" aria-label="Files to send">
			{props.uploads.map((u) => (
				<li key={u.key} class={`upload${u.error ? ' failed' : ''}`}>
					<span class="upload-name">{u.name}</span>
					<span class="upload-size">{formatSize(u.size)}</span>
					{u.error !== null ? (
						<span class="error-text" role="alert">
							{u.error}
						</span>
					) : u.file === null ? (
						<progress max={1} value={u.progress} aria-label={`Uploading ${u.name}`} />
					) : (
						<span class="upload-done">Ready</span>
					)}
					<button type="button" class="link-button" aria-label={`Remove ${u.name}`} onClick={() => props.onRemove(u.key)}>
						×
					</button>
				</li>
			))}
		</ul>
	);
}

/** An object URL of a file's bytes, fetched signed in; revoked when no longer shown. */
function useFileUrl(url: string | null): string | null {
	const [objectUrl, setObjectUrl] = useState<string | null>(null);
	useEffect(() => {
		if (url === null) return;
		let made: string | null = null;
		let live = true;
		api
			.fetchFile(url)
			.then((blob) => {
				if (!live) return;
				made = URL.createObjectURL(blob);
				setObjectUrl(made);
			})
			.catch(() => undefined);
		return () => {
			live = false;
			if (made !== null) URL.revokeObjectURL(made);
		};
	}, [url]);
	return objectUrl;
}

async function saveFile(file: Attachment, open: boolean): Promise<void> {
	const blob = await api.fetchFile(open ? file.url : `${file.url}?download=true`);
	const url = URL.createObjectURL(blob);
	const link = document.createElement('a');
	link.href = url;
	if (open) link.target = '_blank';
	else link.download = file.name;
	link.rel = 'noopener';
	link.click();
	setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function ImageAttachment({ file }: { file: Attachment }) {
	const src = useFileUrl(file.thumbnail_url);
	const ratio = file.width && file.height ? file.width / file.height : 1;
	return (
		<button
			type="button"
			class="attachment-image"
			style={{ aspectRatio: String(ratio) }}
			title={`${file.name} (${formatSize(file.size)})`}
			onClick={() => void saveFile(file, true)}
		>
			{src !== null && <img src={src} alt={file.name} />}
		</button>
	);
}

function FileCard({ file }: { file: Attachment }) {
	const [error, setError] = useState<string | null>(null);
	return (
		<div class="attachment-card">
			<span class="attachment-icon" aria-hidden="true">
				📄
			</span>
			<span class="attachment-meta">
				<span class="attachment-name">{file.name}</span>
				<span class="attachment-size">{formatSize(file.size)}</span>
			</span>
			<button
				type="button"
				class="secondary"
				aria-label={`Download ${file.name}`}
				onClick={() => saveFile(file, false).catch((err: unknown) => setError(describe(err)))}
			>
				Download
			</button>
			{error && <span class="error-text">{error}</span>}
		</div>
	);
}

export function AttachmentList({ files }: { files: Attachment[] }) {
	if (files.length === 0) return null;
	return (
		<div class="attachments">
			{files.map((file) => (file.is_image ? <ImageAttachment key={file.id} file={file} /> : <FileCard key={file.id} file={file} />))}
		</div>
	);
}
