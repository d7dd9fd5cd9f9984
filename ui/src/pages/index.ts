// Which component renders which route. Each page module owns one view of SPEC §9.
import type { ComponentType } from "preact";
import type { Route, RouteName } from "../router";
import type { Session } from "../session";
import { ComparePage } from "./compare";
import { LivePage } from "./live";
import { LogsPage } from "./logs";
import { NotFound } from "./notfound";
import { TracePage } from "./trace";
import { TracesPage } from "./traces";

export interface PageProps {
  readonly route: Route;
  readonly session: Session;
}

export const routes: Record<RouteName, ComponentType<PageProps>> = {
  traces: TracesPage,
  trace: TracePage,
  compare: ComparePage,
  logs: LogsPage,
  live: LivePage,
  notfound: NotFound,
};
