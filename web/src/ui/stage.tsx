// The call's stage: which tiles are shown, where, and on which page (issue 14 item 4).
// The boxes come from lib/layout.ts; this file picks the layout, the large tile and the
// page, measures the stage, and draws the bar above it (who is speaking, the page
// controls, the layout switch).
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { type Box, focusLayout, gridLayout } from '../lib/layout';

/** What the user chose; `auto` is a grid, or a spotlight while a screen is shared or a tile pinned. */
export type LayoutChoice = 'auto' | 'grid' | 'speaker' | 'spotlight';
export type Layout = 'grid' | 'speaker' | 'spotlight';

const CHOICES: [LayoutChoice, string][] = [
	['auto', 'Auto'],
	['grid', 'Grid'],
	['speaker', 'Speaker'],
	['spotlight', 'Spotlight'],
];

/** What the stage needs to know of a tile. */
export interface StageTile {
	key: string;
	local: boolean;
	screen: boolean;
	pinned?: boolean;
	dominant?: boolean;
}

export interface Arranged<T> {
	layout: Layout;
	/** The large tile and its box (speaker and spotlight), or null (grid). */
	main: { tile: T; box: Box } | null;
	/** The other tiles on the current page, each with its box. */
	shown: { tile: T; box: Box }[];
	page: number;
	pages: number;
}

function effectiveLayout(choice: LayoutChoice, tiles: StageTile[]): Layout {
	if (choice !== 'auto') return choice;
	return tiles.some((t) => t.screen || t.pinned) ? 'spotlight' : 'grid';
}

/**
 * The large tile: a pinned one first; then in spotlight a shared screen (someone else's
 * before ours), in speaker view the dominant speaker; then the first other person's camera.
 */
function pickMain<T extends StageTile>(layout: Layout, tiles: T[]): T | undefined {
	const candidates: ((t: T) => boolean | undefined)[] = [(t) => t.pinned];
	if (layout === 'spotlight') candidates.push((t) => t.screen && !t.local, (t) => t.screen);
	candidates.push(
		(t) => t.dominant,
		(t) => !t.local && !t.screen,
		() => true,
	);
	for (const test of candidates) {
		const found = tiles.find(test);
		if (found !== undefined) return found;
	}
	return undefined;
}

/** The tiles of page `page` in a stage `width` × `height`, with their boxes. */
export function arrange<T extends StageTile>(
	tiles: T[],
	choice: LayoutChoice,
	width: number,
	height: number,
	page: number,
): Arranged<T> {
	const layout = effectiveLayout(choice, tiles);
	if (layout === 'grid' || tiles.length === 0) {
		const grid = gridLayout(tiles.length, width, height, page);
		const current = Math.min(page, grid.pages - 1);
		const onPage = tiles.slice(current * grid.perPage, current * grid.perPage + grid.boxes.length);
		return {
			layout,
			main: null,
			shown: onPage.map((tile, i) => ({ tile, box: grid.boxes[i]! })),
			page: current,
			pages: grid.pages,
		};
	}
	const main = pickMain(layout, tiles)!;
	const others = tiles.filter((t) => t !== main);
	const focus = focusLayout(others.length, width, height, page);
	const current = Math.min(page, focus.pages - 1);
	const onPage = others.slice(current * focus.perPage, current * focus.perPage + focus.boxes.length);
	return {
		layout,
		main: { tile: main, box: focus.main! },
		shown: onPage.map((tile, i) => ({ tile, box: focus.boxes[i]! })),
		page: current,
		pages: focus.pages,
	};
}

/** The element's inner size, kept up to date. */
function useSize(element: { current: HTMLElement | null }): { width: number; height: number } {
	const [size, setSize] = useState({ width: 0, height: 0 });
	useEffect(() => {
		const target = element.current;
		if (target === null) return;
		const measure = () => setSize({ width: target.clientWidth, height: target.clientHeight });
		const observer = new ResizeObserver(measure);
		observer.observe(target);
		measure();
		return () => observer.disconnect();
	}, [element]);
	return size;
}

export function Stage<T extends StageTile>(props: {
	tiles: T[];
	renderTile: (tile: T, box: Box, large: boolean) => JSX.Element;
	/** Shown at the start of the bar above the stage (who is speaking). */
	status?: ComponentChildren;
	/** Rendered inside the stage, not laid out (the audio elements). */
	children?: ComponentChildren;
}) {
	const element = useRef<HTMLDivElement>(null);
	const { width, height } = useSize(element);
	const [choice, setChoice] = useState<LayoutChoice>('auto');
	const [page, setPage] = useState(0);
	const arranged = width > 0 && height > 0 ? arrange(props.tiles, choice, width, height, page) : null;
	const pages = arranged?.pages ?? 1;
	const current = arranged?.page ?? 0;
	useEffect(() => {
		if (page !== current) setPage(current); // fewer pages than before
	}, [page, current]);
	const layout = arranged?.layout ?? 'grid';
	return (
		<>
			<div class="stage-bar">
				<div class="stage-status">{props.status}</div>
				{pages > 1 && (
					<div class="pager" role="group" aria-label="Pages">
						<button type="button" aria-label="Previous page" disabled={current === 0} onClick={() => setPage(current - 1)}>
							‹
						</button>
						<span class="page-count">
							Page {current + 1} of {pages}
						</span>
						<button
							type="button"
							aria-label="Next page"
							disabled={current >= pages - 1}
							onClick={() => setPage(current + 1)}
						>
							›
						</button>
					</div>
				)}
				<label class="layout-choice">
					<span class="visually-hidden">Layout</span>
					<select
						name="layout"
						value={choice}
						onChange={(e) => {
							setChoice(e.currentTarget.value as LayoutChoice);
							setPage(0);
						}}
					>
						{CHOICES.map(([value, label]) => (
							<option key={value} value={value}>
								{value === 'auto' ? `${label} (${layout})` : label}
							</option>
						))}
					</select>
				</label>
			</div>
			<div ref={element} class="stage" data-layout={layout} data-count={props.tiles.length} aria-label="Participants">
				{/* One keyed list, so a tile moving between the large box and the others stays mounted. */}
				{arranged &&
					[...(arranged.main ? [arranged.main] : []), ...arranged.shown].map(({ tile, box }) =>
						props.renderTile(tile, box, tile === arranged.main?.tile),
					)}
				{props.children}
			</div>
		</>
	);
}
