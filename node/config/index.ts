/**
 * The node's configuration: `DIR/config.toml` (created, repaired and rewritten as needed by
 * `loadConfig`), then flags and environment on top (`resolveConfig`).
 *
 * ```ts
 * const dir = resolveDataDir({ flag: args.data, env: process.env })
 * const loaded = await loadConfig(dir)
 * for (const line of loaded.repairs) console.error(`config: ${line}`)
 * const config = resolveConfig({ file: loaded.config, env: process.env, flags })
 * ```
 */
export { BROKEN_SUFFIX, CONFIG_FILE_NAME, DATA_DIR_NAME, MAX_CONFIG_BYTES } from './constants.js'
export { ConfigError } from './errors.js'
export { parseHostPort, type HostPort } from './host-port.js'
export { loadConfig, type LoadedConfig } from './load.js'
export { repairConfigText, type RepairInit, type RepairResult } from './repair.js'
export {
  CONFIG_ENV_VARS, resolveConfig, resolveDataDir,
  type ConfigEnvVar, type ConfigFlags, type ResolveConfigInit
} from './resolve.js'
export {
  CONFIG_SPEC, RUN_ON, defaultConfig, settingEntries, settingSpec,
  type ConfigSpec, type RealmConfig, type RunOn, type SectionName, type SettingSpec
} from './spec.js'
export { renderConfig } from './toml.js'
