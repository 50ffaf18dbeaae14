// The registry: every benchmark case, in report order.
import type { Case } from './harness.ts';
import { basicCases } from './cases_basic.ts';
import { convCases } from './cases_conv.ts';
import { trainOpCases } from './cases_train_ops.ts';
import { modelCases } from './cases_models.ts';
import { demoCase } from './cases_demo.ts';

export function allCases(): Case[] {
  return [...basicCases(), ...convCases(), ...trainOpCases(), ...modelCases(), demoCase()];
}
