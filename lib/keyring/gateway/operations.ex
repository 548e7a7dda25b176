defmodule Keyring.Gateway.Operations do
  @moduledoc false
  # The one catalogue of what the gateway can do. REST routes
  # (Keyring.Gateway.Router) and MCP tools (Keyring.Gateway.MCP, named
  # "keyring_<name>") run the same operations with the same argument rules,
  # and a mutating operation needs the bearer token on either.

  alias Keyring.Gateway.Ops.{Calls, Node, Rings, Store}

  @id %{
    "type" => "string",
    "minLength" => 52,
    "maxLength" => 52,
    "description" => "node or keyring id (52 characters, base32)"
  }
  @cid %{
    "type" => "string",
    "pattern" => "^[0-9a-f]{64}$",
    "description" => "BLAKE3 content id (64 hex digits)"
  }
  @timeout %{
    "type" => "integer",
    "minimum" => 1_000,
    "maximum" => 25_000,
    "description" => "milliseconds, 1000..25000 (default 5000; 10000 for joins)"
  }

  defp obj(props, required),
    do: %{"type" => "object", "properties" => props, "required" => required}

  @ops [
    %{
      name: "status",
      run: {Node, :status},
      mutating: false,
      input: %{},
      description:
        "This node: id, name, version, uptime, addresses, health, store and gateway counters."
    },
    %{
      name: "health",
      run: {Node, :health},
      mutating: false,
      input: %{},
      mcp: false,
      description: "Liveness of the store, the coordinator and the mesh (503 when one fails)."
    },
    %{
      name: "identity",
      run: {Node, :identity},
      mutating: false,
      input: %{},
      description: "This node's Ed25519 identity (node id and public key)."
    },
    %{
      name: "presence",
      run: {Node, :presence},
      mutating: false,
      input: %{
        "include_down" => %{
          "type" => "boolean",
          "description" => "also nodes marked down (default true)"
        }
      },
      description:
        "Cluster presence: every node this node knows, up or down, with health and capabilities."
    },
    %{
      name: "mesh",
      run: {Node, :mesh},
      mutating: false,
      input: %{},
      description:
        "One snapshot of the mesh: this node, presence, keyrings with members online, live links."
    },
    %{
      name: "keyrings",
      run: {Rings, :list},
      mutating: false,
      input: %{},
      description:
        "The keyrings (trust groups) this node belongs to, with members and their link state."
    },
    %{
      name: "keyring",
      run: {Rings, :show},
      mutating: false,
      input: %{"id" => @id},
      required: ["id"],
      description: "One instance: name, membership log head, members (roles, admin, online)."
    },
    %{
      name: "keyring_members",
      run: {Rings, :members},
      mutating: false,
      input: %{"id" => @id},
      required: ["id"],
      mcp: false,
      description: "A keyring's members."
    },
    %{
      name: "keyring_links",
      run: {Rings, :links},
      mutating: false,
      input: %{"id" => @id},
      required: ["id"],
      description: "Members of a keyring this node has a live QUIC link to."
    },
    %{
      name: "keyring_create",
      run: {Rings, :create},
      mutating: true,
      input: %{"name" => %{"type" => "string", "minLength" => 1, "maxLength" => 64}},
      required: ["name"],
      description: "Creates a keyring with this node as root holder and first admin."
    },
    %{
      name: "keyring_invite",
      run: {Rings, :invite},
      mutating: true,
      input: %{
        "id" => @id,
        "roles" => %{
          "type" => "array",
          "maxItems" => 16,
          "items" => %{"type" => "string", "pattern" => "^[a-z0-9_.:-]{1,32}$"}
        },
        "ttl_ms" => %{"type" => "integer", "minimum" => 1000},
        "one_time" => %{"type" => "boolean"}
      },
      required: ["id"],
      description: "Makes an invite (text starting with kr1) to a keyring this node administers."
    },
    %{
      name: "keyring_join",
      run: {Rings, :join},
      mutating: true,
      input: %{"invite" => %{"type" => "string", "minLength" => 1}, "timeout_ms" => @timeout},
      required: ["invite"],
      description: "Joins the keyring an invite is for (contacts the admin that made it)."
    },
    %{
      name: "blob_info",
      run: {Store, :blob_info},
      mutating: false,
      input: %{"cid" => @cid},
      required: ["cid"],
      description: "A blob's size, if this node stores it."
    },
    %{
      name: "blob_get",
      run: {Store, :blob_get},
      mutating: false,
      input: %{"cid" => @cid},
      required: ["cid"],
      rest: false,
      description:
        "A blob's content (text, or base64 when not UTF-8), up to 512 KiB; larger ones stream from GET /v1/blobs/{cid}."
    },
    %{
      name: "blob_put",
      run: {Store, :blob_put},
      mutating: true,
      rest: false,
      input: %{"text" => %{"type" => "string"}, "base64" => %{"type" => "string"}},
      description:
        "Stores a blob given as text or base64 (up to 512 KiB); returns its cid once durable."
    },
    %{
      name: "refs",
      run: {Store, :refs},
      mutating: false,
      input: %{"prefix" => %{"type" => "string"}},
      description:
        "Refs (small named pointers) under a prefix; Keyring's own keyring/ refs are not shown."
    },
    %{
      name: "ref_get",
      run: {Store, :ref_get},
      mutating: false,
      input: %{"name" => %{"type" => "string"}},
      required: ["name"],
      description: "One ref's value."
    },
    %{
      name: "ref_put",
      run: {Store, :ref_put},
      mutating: true,
      input: %{
        "name" => %{"type" => "string"},
        "value" => %{"type" => "string"},
        "base64" => %{"type" => "string"}
      },
      required: ["name"],
      description: "Sets a ref (durable before the answer); names under keyring/ are refused."
    },
    %{
      name: "ref_delete",
      run: {Store, :ref_delete},
      mutating: true,
      input: %{"name" => %{"type" => "string"}},
      required: ["name"],
      description: "Deletes a ref."
    },
    %{
      name: "rpc_call",
      run: {Calls, :rpc_call},
      mutating: true,
      input: %{
        "peer" => @id,
        "handle" => %{"type" => "string"},
        "args" => %{"description" => "any JSON value"},
        "keyring" => @id,
        "timeout_ms" => @timeout
      },
      required: ["peer", "handle"],
      description:
        "Calls a handle a keyring member exposed, over QUIC, as this node; the peer's expose/authorize rules apply."
    },
    %{
      name: "task_route",
      run: {Calls, :task_route},
      mutating: true,
      input: %{
        "capability" => %{"type" => "string"},
        "task" => %{"description" => "any JSON value"},
        "timeout_ms" => @timeout
      },
      required: ["capability"],
      description: "Runs a task on a healthy node that registered the capability (least loaded)."
    },
    %{
      name: "transfers",
      run: {Node, :transfers},
      mutating: false,
      input: %{},
      mcp: false,
      description:
        "Content sync transfers, running and recent: stage, bytes and blobs done/total, rate, ETA, per-provider bytes, errors."
    }
  ]

  @by_name Map.new(@ops, &{&1.name, &1})

  @spec all() :: [map()]
  def all, do: @ops

  @spec fetch(String.t()) :: {:ok, map()} | :error
  def fetch(name), do: Map.fetch(@by_name, name)

  @doc "The JSON Schema of an operation's arguments."
  def schema(op), do: obj(op.input, Map.get(op, :required, []))

  @doc """
  Runs `name` with `args` (a map with string keys). Answers `{:ok, status,
  result}` or `{:error, status, code, message}`.
  """
  @spec run(String.t(), map(), map()) ::
          {:ok, pos_integer(), term()} | {:error, pos_integer(), String.t(), String.t()}
  def run(name, args, ctx) when is_map(args) do
    with {:ok, op} <- fetch(name) |> found(name),
         :ok <- authorized(op, ctx),
         :ok <- known_arguments(op, args) do
      {mod, fun} = op.run

      case apply(mod, fun, [args, ctx]) do
        {:ok, result} -> {:ok, 200, result}
        {:ok, status, result} -> {:ok, status, result}
        {:error, _, _, _} = error -> error
      end
    end
  catch
    {:bad_request, message} -> {:error, 400, "bad_request", message}
    {:forbidden, message} -> {:error, 403, "forbidden", message}
  end

  def run(_name, _args, _ctx), do: {:error, 400, "bad_request", "arguments must be a JSON object"}

  # Unknown arguments are refused rather than ignored: a typo should not
  # silently fall back to a default.
  defp known_arguments(op, args) do
    case Map.keys(args) -- Map.keys(op.input) do
      [] -> :ok
      unknown -> {:error, 400, "bad_request", "unknown arguments: #{Enum.join(unknown, ", ")}"}
    end
  end

  defp found({:ok, op}, _), do: {:ok, op}
  defp found(:error, name), do: {:error, 404, "not_found", "no operation #{name}"}

  defp authorized(%{mutating: true}, %{authorized: false}),
    do:
      {:error, 401, "token_required",
       "this operation changes state and needs 'Authorization: Bearer <token>' (see <data dir>/gateway.token)"}

  defp authorized(_op, _ctx), do: :ok
end
