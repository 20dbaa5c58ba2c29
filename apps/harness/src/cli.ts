#!/usr/bin/env node
// Entry point of the `viommu` bin.
import { main } from './cli/main.js';

process.exitCode = await main(process.argv.slice(2));
