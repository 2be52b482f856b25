// Entry point deployed by `supabase functions deploy merchant-search`.
import { createContext } from "../_shared/context.ts";
import { createMerchantSearchHandler } from "./handler.ts";

Deno.serve(createMerchantSearchHandler(createContext()));
