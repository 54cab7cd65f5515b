// Types of documentIds.js (a plugin graphql-codegen loads as JavaScript), for codegen.ts.
import type { PluginFunction } from '@graphql-codegen/plugin-helpers';
import type { DocumentNode } from 'graphql';

export declare const embedId: (document: DocumentNode) => { hash: string };
export declare const plugin: PluginFunction;
