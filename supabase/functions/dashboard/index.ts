// Entry point deployed by `supabase functions deploy dashboard`.
import { createContext } from "../_shared/context.ts";
import { createDashboardHandler } from "./handler.ts";

Deno.serve(createDashboardHandler(createContext()));
