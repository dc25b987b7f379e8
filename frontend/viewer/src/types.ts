// Shapes of what the server sends and what the viewer keeps; types only, no code.

/** One instance of the series, as /api/series/<id>/viewer/ lists it. */
export interface InstanceData {
  id: string;
  sop_uid: string;
  number: number | null;
  frames: number;
  rows: number;
  columns: number;
  pixel_spacing: number[] | null;
  slice_position?: number | null; // ImagePositionPatient on the slice normal (mm)
  wado_url: string;
}

/** A series of a study, as the viewer's strip and the prior study's picker list it. */
export interface StripSeries {
  id: string;
  modality: string;
  number: number | null;
  description: string;
  instance_count: number;
  thumbnail_url: string | null;
}

/** Another study of the same pseudonymous patient in the project. */
export interface OtherStudy {
  id: string;
  study_date: string;
  description: string;
  series: StripSeries[];
}

/** /api/series/<id>/viewer/: the series, its project, the patient's pseudonym and the instances. */
export interface SeriesData {
  series: { id: string; modality: string; number: number | null; description: string; series_uid: string };
  study: { id: string };
  project: { id: string; name: string };
  patient: string;
  roles: string[];
  instances: InstanceData[];
  study_series?: StripSeries[];
  other_studies?: OtherStudy[];
}

/** What the page fetches before Cornerstone3D is loaded: the assignment (if any) and the series. */
export interface Early {
  assignment: any;
  data: SeriesData;
}

export type Kind =
  | 'box'
  | 'polygon'
  | 'freehand'
  | 'mask'
  | 'point'
  | 'line'
  | 'ellipse'
  | 'angle'
  | 'classification_image'
  | 'classification_series';

export interface Label {
  id: string;
  name: string;
  color: string;
  kind: Kind;
  attributes?: { name: string; type: string; choices?: string[] }[];
}

/** What the server stores for one annotation (the contract's fields the viewer uses). */
export interface ServerAnnotation {
  id: string;
  assignment: string;
  label: string;
  kind: Kind;
  sop_instance_uid: string;
  frame: number;
  geometry: any;
  attributes: Record<string, unknown>;
  revision: number;
  author: any;
  deleted: boolean;
  source?: string; // human | model | fusion
  model_version?: string | null;
  proposal?: string | null;
}

/** The content of an annotation that undo, redo and conflicts swap in and out. */
export interface Snapshot {
  label: string;
  kind: Kind;
  sop: string;
  frame: number;
  geometry: any;
  attributes: Record<string, unknown>;
}

/** One annotation on the page: its content, its server identity and its save state. */
export interface Rec extends Snapshot {
  uid: string; // Cornerstone annotationUID (or mask/classification key)
  clientId: string;
  serverId?: string;
  revision: number;
  deleted: boolean;
  readonly: boolean;
  author?: string;
  source?: string; // "model": an accepted model proposal
  hidden: boolean;
  // save state
  dirty: boolean;
  inflight: boolean;
  failed: boolean;
  refused?: boolean; // the task was locked: this change was not saved
  conflict?: ServerAnnotation;
  edits: number; // bumped on every local change; a save that lands compares it
  timer?: number;
  attempt: number;
}
