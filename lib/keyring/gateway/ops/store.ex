defmodule Keyring.Gateway.Ops.Store do
  @moduledoc false
  # The blob store and refs. Blobs travel inline here (MCP tools, bounded by
  # the JSON body limit); REST streams them both ways (Keyring.Gateway.Blobs).
  # Refs under "keyring/" are Keyring's own state (keyring logs with sealed
  # root keys, the address book): the gateway neither reads nor writes them.

  alias Keyring.Store
  alias Keyring.Gateway.Args

  @reserved "keyring/"
  # Inline blobs (MCP) stay well under the JSON body limit once base64'd.
  @inline_max 512 * 1024

  def blob_info(args, ctx) do
    cid = cid!(args)

    case Store.size(cid, instance: ctx.instance) do
      {:ok, size} -> {:ok, %{"cid" => cid, "size" => size}}
      {:error, :not_found} -> {:error, 404, "not_found", "no blob #{cid}"}
      {:error, reason} -> {:error, 500, "store_error", inspect(reason)}
    end
  end

  def blob_get(args, ctx) do
    cid = cid!(args)

    with {:ok, size} <- size(cid, ctx),
         :ok <- if(size <= @inline_max, do: :ok, else: too_large_inline(cid, size)),
         {:ok, data} <- Store.get(cid, instance: ctx.instance) do
      text = if String.valid?(data), do: data, else: nil

      {:ok,
       %{
         "cid" => cid,
         "size" => size,
         "text" => text,
         "base64" => if(text, do: nil, else: Base.encode64(data))
       }}
    else
      {:error, :not_found} -> {:error, 404, "not_found", "no blob #{cid}"}
      {:error, status, code, message} -> {:error, status, code, message}
      {:error, reason} -> {:error, 500, "store_error", inspect(reason)}
    end
  end

  def blob_put(args, ctx) do
    data =
      case Args.one_of(args, "text", "base64") do
        {"text", text} -> text
        {"base64", b64} -> decode64!(b64)
      end

    if byte_size(data) > @inline_max,
      do:
        Args.bad(
          "inline blobs are limited to #{@inline_max} bytes; stream larger ones with POST /v1/blobs"
        )

    case Store.put(data, instance: ctx.instance) do
      {:ok, cid} -> {:ok, 201, %{"cid" => cid, "size" => byte_size(data)}}
      {:error, reason} -> {:error, 500, "store_error", inspect(reason)}
    end
  end

  def refs(args, ctx) do
    prefix = Args.string(args, "prefix", default: "", min: 0, max: 1024)

    case Store.list_refs(prefix, instance: ctx.instance) do
      {:ok, refs} ->
        refs = for {name, value} <- refs, not reserved?(name), do: ref_view(name, value)
        {:ok, %{"refs" => refs}}

      {:error, reason} ->
        {:error, 500, "store_error", inspect(reason)}
    end
  end

  def ref_get(args, ctx) do
    name = name!(args)

    case Store.get_ref(name, instance: ctx.instance) do
      {:ok, value} -> {:ok, ref_view(name, value)}
      {:error, :not_found} -> {:error, 404, "not_found", "no ref #{name}"}
      {:error, reason} -> {:error, 500, "store_error", inspect(reason)}
    end
  end

  def ref_put(args, ctx) do
    name = name!(args)

    value =
      case Args.one_of(args, "value", "base64") do
        {"value", v} -> v
        {"base64", b64} -> decode64!(b64)
      end

    if byte_size(value) > 65_536, do: Args.bad("a ref value is limited to 64 KiB")

    case Store.put_ref(name, value, instance: ctx.instance) do
      :ok -> {:ok, ref_view(name, value)}
      {:error, {:too_large, what}} -> {:error, 400, "bad_request", "the ref #{what} is too large"}
      {:error, reason} -> {:error, 500, "store_error", inspect(reason)}
    end
  end

  def ref_delete(args, ctx) do
    name = name!(args)

    case Store.delete_ref(name, instance: ctx.instance) do
      {:ok, existed} -> {:ok, %{"name" => name, "deleted" => existed}}
      {:error, reason} -> {:error, 500, "store_error", inspect(reason)}
    end
  end

  @doc false
  def cid!(args) do
    cid = Args.string(args, "cid", required: true, max: 64)
    if cid =~ ~r/\A[0-9a-f]{64}\z/, do: cid, else: Args.bad("cid must be 64 lowercase hex digits")
  end

  defp size(cid, ctx), do: Store.size(cid, instance: ctx.instance)

  defp too_large_inline(cid, size),
    do:
      {:error, 413, "too_large",
       "blob #{cid} has #{size} bytes; inline reads stop at #{@inline_max}: GET /v1/blobs/#{cid} streams it"}

  defp name!(args) do
    name = Args.string(args, "name", required: true, max: 1024)

    if reserved?(name),
      do: throw({:forbidden, "refs under #{@reserved} are Keyring's own state"}),
      else: name
  end

  defp reserved?(name), do: String.starts_with?(name, @reserved)

  defp ref_view(name, value) do
    text = if String.valid?(value), do: value, else: nil
    %{"name" => name, "value" => text, "base64" => if(text, do: nil, else: Base.encode64(value))}
  end

  defp decode64!(b64) do
    case Base.decode64(b64) do
      {:ok, data} -> data
      :error -> Args.bad("base64 is not valid base64")
    end
  end
end
