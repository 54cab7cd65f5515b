# Production image: compiled JavaScript, production dependencies only, drains on SIGTERM.
# Build:  docker build -t corkboard .
# Run:    docker run -p 4000:4000 -e MONGODB_URI='mongodb://…/?replicaSet=rs0' corkboard
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts/build-demo.ts ./scripts/
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER node
EXPOSE 4000
# Exec form: node is PID 1 and gets `docker stop`'s SIGTERM itself (it drains, then exits 0).
CMD ["node", "dist/main.js"]
